<?php
declare(strict_types=1);

namespace Zkgate;

/**
 * A refusal or failure answered by the gateway: `code` is zkgate's stable error code
 * (docs/errors.md: NO_NODE, NODE_EXISTS, BAD_VERSION, LOCK_NOT_ACQUIRED …), `status` the HTTP
 * status (0 when the gateway could not be reached), `details` the problem's machine-readable context.
 */
class ZkgateException extends \RuntimeException
{
    /** @param array<string, mixed> $details */
    public function __construct(
        public readonly string $errorCode,
        string $message,
        public readonly int $status = 0,
        public readonly array $details = [],
    ) {
        parent::__construct("$errorCode: $message", $status);
    }
}
