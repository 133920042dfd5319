// The three ways keel checks data against a JSON Schema, each with its own ajv options. The
// runtime (index.ts) and the build (scripts/build-generated.mjs, which precompiles every
// schema keel ships) both take them from here, so a precompiled validator is the one ajv
// would compile at run time.
import type { Options } from 'ajv';

export const FLAVORS = {
  /** The YAML inventory (inventory/schema.ts): strict, errors carry their schema and data. */
  inventory: { allErrors: true, verbose: true, strict: true, allowUnionTypes: true },
  /** A resource's params and a role variable's value (engine/compile.ts). */
  values: { allErrors: true, strict: false, useDefaults: false },
  /** Whether a role's declaration of a variable is a valid JSON Schema (engine/roles.ts). */
  declarations: { allErrors: true, strict: false },
} satisfies Record<string, Options>;

export type Flavor = keyof typeof FLAVORS;
