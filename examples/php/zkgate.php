<?php
// A tiny zkgate REST client in plain PHP with php-curl (no ZooKeeper extension needed).
// Used by leader-worker.php and lock.php.

/** The gateway's base URL, from ZKGATE_URL (default http://127.0.0.1:8080). */
function zkgate_url(): string
{
    return rtrim(getenv('ZKGATE_URL') ?: 'http://127.0.0.1:8080', '/');
}

/**
 * One JSON call. Returns [HTTP status, decoded body]; a transport failure is status 0.
 * API keys: set ZKGATE_API_KEY and it is sent as a bearer token.
 */
function zkgate(string $method, string $path, ?array $body = null, array $query = []): array
{
    $url = zkgate_url() . $path . ($query ? '?' . http_build_query($query) : '');
    $ch = curl_init($url);
    $headers = ['accept: application/json'];
    if (getenv('ZKGATE_API_KEY')) {
        $headers[] = 'authorization: Bearer ' . getenv('ZKGATE_API_KEY');
    }
    if ($body !== null) {
        $headers[] = 'content-type: application/json';
        curl_setopt($ch, CURLOPT_POSTFIELDS, json_encode($body));
    }
    curl_setopt_array($ch, [
        CURLOPT_CUSTOMREQUEST => $method,
        CURLOPT_RETURNTRANSFER => true,
        CURLOPT_HTTPHEADER => $headers,
        CURLOPT_TIMEOUT_MS => 120000,
    ]);
    $text = curl_exec($ch);
    $status = (int) curl_getinfo($ch, CURLINFO_RESPONSE_CODE);
    curl_close($ch);
    return [$status, is_string($text) && $text !== '' ? json_decode($text, true) : null];
}

/** Prints one line at once (workers run under supervisors that read their output live). */
function say(string $line): void
{
    fwrite(STDOUT, $line . "\n");
    fflush(STDOUT);
}
