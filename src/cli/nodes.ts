/**
 * `kura nodes list | forget ID [--force]` (DIST-1): the nodes registered on a shared catalog —
 * id, host, last heartbeat, the outbox consumers of their own indexes — and retiring one gone
 * for good, so its cursors stop holding the outbox back (the `prune-outbox` job does the same
 * for nodes not seen for `node.stale_after_hours`). On a catalog one process owns there are none.
 */
import type { Command } from "commander";
import { KuraError } from "../core/errors.js";
import { type ConfigOption, withKura } from "./open-kura.js";
import { printJson, printTable } from "./output.js";

interface Options extends ConfigOption {
  json?: boolean;
  force?: boolean;
}

export function registerNodesCommands(program: Command): void {
  const nodes = program.command("nodes").description("The nodes sharing this catalog (DIST-1)");
  nodes
    .command("list")
    .description("List the registered nodes, their last heartbeat and their outbox consumers")
    .option("-c, --config <file>", "config file (default $KURA_CONFIG)")
    .option("--json", "print the nodes as JSON")
    .action(async (opts: Options) => {
      const list = await withKura("nodes list", opts, (kura) => kura.nodes());
      const now = Date.now();
      if (opts.json) {
        printJson({
          nodes: list.map((n) => ({
            id: n.id,
            host: n.host,
            pid: n.pid,
            started_at: new Date(n.startedAt).toISOString(),
            seen_at: new Date(n.seenAt).toISOString(),
            live: n.live,
            consumers: n.consumers,
          })),
        });
        return;
      }
      printTable(
        ["id", "host", "pid", "last seen", "live", "consumers"],
        list.map((n) => [
          n.id,
          n.host,
          String(n.pid),
          `${Math.max(0, Math.round((now - n.seenAt) / 1000))} s ago`,
          n.live ? "yes" : "no",
          n.consumers.join(",") || "-",
        ]),
      );
    });
  nodes
    .command("forget <id>")
    .description("Forget a node gone for good: its outbox cursors stop holding the outbox back")
    .option("-c, --config <file>", "config file (default $KURA_CONFIG)")
    .option("--force", "forget it even if it was seen within 30 s")
    .option("--json", "print the result as JSON")
    .action(async (id: string, opts: Options) => {
      await withKura("nodes forget", opts, async (kura) => {
        const node = (await kura.nodes()).find((n) => n.id === id);
        if (!node)
          throw new KuraError("NODE_NOT_FOUND", `no node ${id} is registered on this catalog`, {
            operation: "nodes.forget",
          });
        if (node.live && !opts.force)
          throw new KuraError(
            "NODE_LIVE",
            `node ${id} was seen ${Date.now() - node.seenAt} ms ago: it runs`,
            {
              operation: "nodes.forget",
            },
          );
        await kura.forgetNode(id);
        if (opts.json) printJson({ forgotten: id, consumers: node.consumers });
        else process.stdout.write(`forgot node ${id} (consumers: ${node.consumers.join(", ") || "none"})\n`);
      });
    });
}
