/**
 * Routes of the documented API (docs/http.md) whose capability the library does not have yet. They exist (so clients and
 * the OpenAPI document see the whole API), authenticate like the others, and answer 501 with
 * `error_code: NOT_IMPLEMENTED`; the OpenAPI document marks them `x-kura-not-implemented`.
 */
import { z } from "zod";
import type { HttpMethod, RouteSpec } from "../route.js";
import { idSchema } from "../schemas.js";

function pending(
  method: HttpMethod,
  path: string,
  operationId: string,
  summary: string,
  tag: string,
  why: string,
  extra: Partial<RouteSpec> = {},
): RouteSpec {
  return { method, path, operationId, summary, tag, responses: {}, notImplemented: why, ...extra };
}

const MAIL = "mail storage (MAIL-1) is not built yet";

export function unimplementedRoutes(): RouteSpec[] {
  const mailbox = { params: z.object({ mailbox_id: idSchema }) };
  return [
    pending(
      "POST",
      "/v1/mailboxes/{mailbox_id}/messages",
      "storeMail",
      "Store an RFC 5322 message",
      "mail",
      MAIL,
      mailbox,
    ),
    pending(
      "GET",
      "/v1/mailboxes/{mailbox_id}/messages",
      "listMail",
      "A mailbox's messages",
      "mail",
      MAIL,
      mailbox,
    ),
    pending(
      "PATCH",
      "/v1/mailboxes/{mailbox_id}/messages/{id}/flags",
      "setMailFlags",
      "Change flags and tags",
      "mail",
      MAIL,
      {
        params: z.object({ mailbox_id: idSchema, id: z.string() }),
      },
    ),
  ];
}
