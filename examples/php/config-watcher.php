<?php
// A config watcher in plain PHP (php-curl, no ZooKeeper extension): it loops on zkgate's
// long-poll ("blocking query") and prints every new version of a config znode as it happens.
//
//   php config-watcher.php [gateway-url] [znode-path] [changes-to-print (0 = forever)]
//   ZKGATE_API_KEY=zkg_… php config-watcher.php http://127.0.0.1:8080 /config/app
//
// Each request sends the index (X-Zkgate-Index) of the state it last saw and waits up to 30 s.
// The gateway answers at once when the node is newer, else when it changes, else after the wait
// with the unchanged state and `X-Zkgate-Unchanged: true`. Thousands of such watchers on one
// node cost the gateway a single ZooKeeper watch.

$gateway = rtrim($argv[1] ?? (getenv('ZKGATE_URL') ?: 'http://127.0.0.1:8080'), '/');
$path = $argv[2] ?? '/config/app';
$max = (int) ($argv[3] ?? 0);
$waitMs = 30000;
$headers = ['Accept: application/json'];
if (getenv('ZKGATE_API_KEY')) {
    $headers[] = 'Authorization: Bearer ' . getenv('ZKGATE_API_KEY'); // a read key is enough
}

$urlPath = implode('/', array_map('rawurlencode', explode('/', $path)));
$index = '0'; // "0": we have seen nothing (or the node did not exist)
$printed = 0;

while ($max === 0 || $printed < $max) {
    $response = [];
    $ch = curl_init("$gateway/v1/nodes$urlPath?wait=$waitMs&index=$index");
    curl_setopt_array($ch, [
        CURLOPT_RETURNTRANSFER => true,
        CURLOPT_TIMEOUT_MS => $waitMs + 10000,
        CURLOPT_HTTPHEADER => $headers,
        CURLOPT_HEADERFUNCTION => function ($ch, $line) use (&$response) {
            $parts = explode(':', $line, 2);
            if (count($parts) === 2) {
                $response[strtolower(trim($parts[0]))] = trim($parts[1]);
            }
            return strlen($line);
        },
    ]);
    $body = curl_exec($ch);
    $status = curl_getinfo($ch, CURLINFO_RESPONSE_CODE);
    if ($body === false || $status >= 500) {
        fwrite(STDERR, 'gateway unreachable: ' . ($body === false ? curl_error($ch) : "HTTP $status $body") . "; retrying\n");
        sleep(1);
        continue;
    }
    $index = $response['x-zkgate-index'] ?? $index;
    if (($response['x-zkgate-unchanged'] ?? '') === 'true') {
        continue; // the wait ended without a change: ask again
    }
    if ($status === 404) {
        echo "$path does not exist\n";
    } elseif ($status === 200) {
        $node = json_decode($body, true);
        echo "$path version {$node['stat']['version']}: {$node['data']}\n";
    } else {
        fwrite(STDERR, "unexpected HTTP $status: $body\n");
        exit(1);
    }
    $printed++;
}
