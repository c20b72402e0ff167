/**
 * The local key provider (SEC-2): master keys held in memory, given by the configuration
 * (`encryption.master_key` or its file, and `previous_master_keys`). Data keys are wrapped with
 * AES-256-GCM under the current master key, bound to a context (tenant and version), so a
 * wrapped key copied to another row does not open there.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";
import { KuraError } from "../../core/errors.js";
import type { KeyProvider } from "../../ports/key-provider.js";

const FORMAT = "v1";
const NONCE_BYTES = 12;
const TAG_BYTES = 16;

/** A master key's id: not secret, derived from the key so that it names it everywhere alike. */
export function masterKeyId(key: Buffer): string {
  return createHash("sha256").update("kura master key id\0").update(key).digest("hex").slice(0, 16);
}

export class LocalKeyProvider implements KeyProvider {
  readonly scheme = "local";
  readonly currentKeyId: string;
  private readonly keys = new Map<string, Buffer>();

  /** `current` and `previous`: 32-byte keys (the configuration checked them). */
  constructor(current: Buffer, previous: readonly Buffer[] = []) {
    this.currentKeyId = masterKeyId(current);
    this.keys.set(this.currentKeyId, current);
    for (const k of previous) this.keys.set(masterKeyId(k), k);
  }

  async wrap(dataKey: Buffer, context: string): Promise<{ wrapped: string; masterKeyId: string }> {
    const master = this.keys.get(this.currentKeyId) as Buffer;
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv("aes-256-gcm", master, nonce);
    cipher.setAAD(Buffer.from(context, "utf8"));
    const body = Buffer.concat([nonce, cipher.update(dataKey), cipher.final(), cipher.getAuthTag()]);
    return { wrapped: `${FORMAT}.${body.toString("base64")}`, masterKeyId: this.currentKeyId };
  }

  async unwrap(wrapped: string, masterKeyId: string, context: string): Promise<Buffer> {
    const master = this.keys.get(masterKeyId);
    if (!master)
      throw new KuraError(
        "MASTER_KEY_UNKNOWN",
        `a data key is wrapped by master key ${masterKeyId}, which the configuration does not hold`,
        { operation: "keys.unwrap", context: { masterKeyId } },
      );
    const [format, text] = wrapped.split(".", 2);
    const body = Buffer.from(text ?? "", "base64");
    if (format !== FORMAT || body.length < NONCE_BYTES + TAG_BYTES) throw damaged();
    try {
      const decipher = createDecipheriv("aes-256-gcm", master, body.subarray(0, NONCE_BYTES));
      decipher.setAAD(Buffer.from(context, "utf8"));
      decipher.setAuthTag(body.subarray(body.length - TAG_BYTES));
      return Buffer.concat([
        decipher.update(body.subarray(NONCE_BYTES, body.length - TAG_BYTES)),
        decipher.final(),
      ]);
    } catch (e) {
      throw damaged(e);
    }
  }
}

function damaged(cause?: unknown): KuraError {
  return new KuraError("BODY_CORRUPT", "a wrapped data key is damaged or bound to another tenant", {
    operation: "keys.unwrap",
    cause,
  });
}
