// The `demo` command: the tutorial's scenarios, narrated step by step (src/demo/).

import { UsageError } from "../errors.ts";
import { DEMO_GATE_TIMEOUT_MS, DEMO_LANGUAGES, DEMO_SCENARIOS, type DemoScenario, runDemo } from "../demo/mod.ts";
import { parseChoice } from "./args.ts";
import { type Command, str } from "./command.ts";
import { defineCommand } from "./flags.ts";

const CHOICES = [...DEMO_SCENARIOS, "all"] as const;

/** `echogate demo`: the tutorial's scenarios on loopback, server and client side by side. */
export const demoCommand: Command = defineCommand({
  name: "demo",
  synopsis: `[${CHOICES.join("|")}] [options]`,
  about: `Runs the socket tutorial's scenarios end to end in this process, server and client side by
side on loopback (a free port each), narrating every socket step from the trace: the gate with
the right token, a wrong token and a client that waits too long (the 5 s timeout shortened to
${DEMO_GATE_TIMEOUT_MS / 1000} s), the echo client's message, and recv(1024): a message over 1024 bytes in several
reads, two quick sends in one read. Writes no files. See docs/learn.md.`,
  usage: [`[${CHOICES.join("|")}] [{lang}] [{runtime-notes}]`],
  flags: [
    { name: "lang", value: "LANG", usage: "en|zh", help: "Narrate in English or the tutorial's Chinese (default en)" },
    { name: "runtime-notes", help: "Add what Python's, Node's, Deno's and Bun's APIs do at each step" },
  ],
  run: async (host, positionals, options) => {
    if (positionals.length > 1) throw new UsageError(`Unexpected argument "${positionals[1]}"`);
    const choice = positionals[0] ?? "all";
    if (!(CHOICES as readonly string[]).includes(choice)) {
      throw new UsageError(`Unknown scenario "${choice}": not one of ${CHOICES.join(", ")}`);
    }
    const lang = str(options, "lang");
    const noColor = (host.env("NO_COLOR") ?? "") !== "";
    await runDemo({
      transport: host.transport,
      write: host.writeOut,
      scenarios: choice === "all" ? DEMO_SCENARIOS : [choice as DemoScenario],
      language: lang === undefined ? "en" : parseChoice("lang", lang, DEMO_LANGUAGES),
      runtimeNotes: options["runtime-notes"] === true,
      color: !noColor && host.isTerminal?.("stdout") === true,
    });
    return 0;
  },
});
