// Expected chat-template renderings for qmoe's tests, from the official @huggingface/jinja (the Jinja implementation
// Hugging Face ships for chat templates; trim_blocks and lstrip_blocks as transformers sets them).
// Not run in CI. Usage (from this folder, after `npm ci`):
//   node render.mjs [FIXTURES_DIR] > ../../tests/data/chat-templates/expected.json
// FIXTURES_DIR defaults to ../../../shared/fixtures (the shared fixtures beside the repository).
import { Template } from "@huggingface/jinja";
import { readFileSync, existsSync, readdirSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const fixtures = process.argv[2] ?? join(here, "..", "..", "..", "shared", "fixtures");

// Fixed conversations: system/user/assistant, multi-turn, with and without the generation prompt.
const conversations = [
  { name: "user", add_generation_prompt: true, messages: [{ role: "user", content: "Hello, who are you?" }] },
  { name: "user-no-prompt", add_generation_prompt: false, messages: [{ role: "user", content: "What is 2 + 2?" }] },
  { name: "system-user", add_generation_prompt: true, messages: [
    { role: "system", content: "You are a terse assistant." },
    { role: "user", content: "Name a colour." }] },
  { name: "multi-turn", add_generation_prompt: true, messages: [
    { role: "user", content: "Hi!" },
    { role: "assistant", content: "Hello. How can I help?" },
    { role: "user", content: "Tell me a joke\nabout cats." }] },
  { name: "system-multi-turn", add_generation_prompt: false, messages: [
    { role: "system", content: "Answer in French." },
    { role: "user", content: "Good morning" },
    { role: "assistant", content: " Bonjour ! " },
    { role: "user", content: "Thanks – ça va?" },
    { role: "assistant", content: "Très bien." }] },
  { name: "two-users", add_generation_prompt: true, messages: [
    { role: "user", content: "One" },
    { role: "user", content: "Two" }] },
];

function tokenText(v) {
  if (typeof v === "string") return v;
  if (v && typeof v === "object" && typeof v.content === "string") return v.content;
  return undefined;
}

const configs = [];
const tokDir = join(fixtures, "tokenizers");
for (const d of readdirSync(tokDir).sort()) {
  const p = join(tokDir, d, "tokenizer_config.json");
  if (existsSync(p)) configs.push(`tokenizers/${d}/tokenizer_config.json`);
}
for (const m of ["qwen3-moe-tiny", "deepseek-v3-tiny"]) {
  if (existsSync(join(fixtures, m, "tokenizer_config.json"))) configs.push(`${m}/tokenizer_config.json`);
}

const out = [];
for (const rel of configs) {
  const cfg = JSON.parse(readFileSync(join(fixtures, rel), "utf8"));
  let source = cfg.chat_template ?? null;
  if (Array.isArray(source)) source = source.find((t) => t.name === "default")?.template ?? null;
  const entry = { config: rel, has_template: source !== null, cases: [] };
  if (source !== null) {
    const template = new Template(source);
    const special = {};
    for (const k of ["bos_token", "eos_token", "unk_token", "pad_token"]) {
      const t = tokenText(cfg[k]);
      if (t !== undefined) special[k] = t;
    }
    for (const c of conversations) {
      let expected = null, error = null;
      try {
        expected = template.render({ messages: c.messages, add_generation_prompt: c.add_generation_prompt, tools: null, documents: null, ...special });
      } catch (e) { error = String(e.message ?? e); }
      entry.cases.push({ name: c.name, add_generation_prompt: c.add_generation_prompt, messages: c.messages, expected, error });
    }
  }
  out.push(entry);
}
process.stdout.write(JSON.stringify({ generator: "@huggingface/jinja", version: JSON.parse(readFileSync(join(here, "node_modules", "@huggingface", "jinja", "package.json"), "utf8")).version, templates: out }, null, 1) + "\n");
