// The version the broker gives in `$SYS/broker/version` ("midge version …"): package.json's
// (scripts/vocab.mjs checks that the two agree).
export const VERSION = "0.1.0";
