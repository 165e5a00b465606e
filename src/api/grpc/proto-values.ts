/**
 * Conversions between proto-loader's plain objects and core values that every gRPC adapter
 * shares: enum names, wrapper types, optional strings.
 */
import { invalidArgument } from '../../core/index.js';

/** A `google.protobuf.*Value` wrapper as proto-loader decodes it (null when absent). */
export type Wrapped<T> = { readonly value: T } | null | undefined;

/** The wrapped value, or undefined when the field is absent. */
export function unwrap<T>(w: Wrapped<T>): T | undefined {
  return w === null || w === undefined ? undefined : w.value;
}

/** An empty string means "not given" in proto3. */
export function optionalString(s: string | undefined): string | undefined {
  return s === undefined || s === '' ? undefined : s;
}

/**
 * The core spelling of a proto enum value: `CREATE_MODE_EPHEMERAL` → `ephemeral`; the
 * `_UNSPECIFIED` value gives undefined (the core default applies).
 * @throws INVALID_ARGUMENT naming `field` for a value outside `allowed`
 */
export function fromEnum<T extends string>(value: string | number | undefined, prefix: string, allowed: readonly T[], field: string): T | undefined {
  if (value === undefined || value === 0 || value === `${prefix}_UNSPECIFIED`) return undefined;
  const name = typeof value === 'string' && value.startsWith(`${prefix}_`) ? value.slice(prefix.length + 1).toLowerCase() : '';
  if (!(allowed as readonly string[]).includes(name)) throw invalidArgument(field, `must be one of ${allowed.map((a) => `${prefix}_${a.toUpperCase()}`).join(', ')}`);
  return name as T;
}

/** The proto enum value name for a core value: (`LEASE_STATE`, `active`) → `LEASE_STATE_ACTIVE`. */
export function toEnum(prefix: string, value: string): string {
  return `${prefix}_${value.toUpperCase()}`;
}
