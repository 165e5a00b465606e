<?php
// PSR-4 autoloading of the Zkgate\ namespace for use without Composer:
//   require 'path/to/clients/php/autoload.php';
// With Composer, require zkgate/client and use vendor/autoload.php instead.
spl_autoload_register(function (string $class): void {
    if (str_starts_with($class, 'Zkgate\\')) {
        $file = __DIR__ . '/src/' . str_replace('\\', '/', substr($class, strlen('Zkgate\\'))) . '.php';
        if (is_file($file)) {
            require $file;
        }
    }
});
