/** What route modules receive from the server: the library, the config, metrics and a clock. */
import type { KuraConfig } from "../../config/index.js";
import type { Kura } from "../../kura.js";
import type { HttpMetrics } from "../metrics.js";

export interface HttpDeps {
  kura: Kura;
  config: KuraConfig;
  metrics: HttpMetrics;
  clock: () => number;
}
