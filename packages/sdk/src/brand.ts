/**
 * Brands: how the runtime recognises the SDK's errors, secrets and config specs when they
 * come from another installed copy of this package. A connector installed on `plugin.path`
 * brings its own `@omnibus/sdk`; its classes are not the runtime's classes, so `instanceof`
 * against the runtime's copy would say no. Every copy marks its prototypes with the same
 * registered symbols (`Symbol.for` is shared by all modules of a process), and checks those.
 */

/** The registered symbol that marks values of one SDK kind, e.g. `Symbol.for('omnibus.sdk.FatalConnectorError')`. */
export const brandOf = (kind: string): symbol => Symbol.for(`omnibus.sdk.${kind}`);

/** Marks every instance of `target` (and of its subclasses) as being of `kind`. */
export function brandPrototype(target: { prototype: object }, kind: string): void {
  Object.defineProperty(target.prototype, brandOf(kind), { value: true, enumerable: false, configurable: false, writable: false });
}

/** True when `value` carries the brand of `kind`, whichever copy of the SDK made it. */
export function hasBrand(value: unknown, kind: string): boolean {
  return (
    ((typeof value === 'object' && value !== null) || typeof value === 'function') &&
    (value as Record<symbol, unknown>)[brandOf(kind)] === true
  );
}

const ordinaryHasInstance = Function.prototype[Symbol.hasInstance];

/**
 * `instanceof` for a branded class: the class itself answers by brand, so that an instance
 * made by another copy of the SDK is recognised; a subclass declared elsewhere (which
 * inherits this static method) keeps the ordinary prototype-chain answer.
 */
export function brandedInstanceOf(self: unknown, brandedClass: unknown, kind: string, value: unknown): boolean {
  return self === brandedClass ? hasBrand(value, kind) : ordinaryHasInstance.call(self, value);
}
