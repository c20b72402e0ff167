/** The configuration the usage crash test's child and parent both open Kura with. */
export const USAGE_TEST_CONFIG = {
  durability: "os",
  tiers: { free: { limits: { max_message_bytes: 4_000, max_object_bytes: 10_000 } } },
} as const;
