// One streamed call through an unmodified Node SDK, printing the text it
// assembled: `node stream.mjs openai|anthropic BASE_URL MODEL`.
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";

const [sdk, base, model] = process.argv.slice(2);
const messages = [{ role: "user", content: "hi" }];
let text = "";
if (sdk === "openai") {
  const client = new OpenAI({ baseURL: `${base}/v1`, apiKey: "unused", maxRetries: 0 });
  const stream = await client.chat.completions.create({ model, messages, stream: true });
  for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? "";
} else if (sdk === "anthropic") {
  const client = new Anthropic({ baseURL: base, apiKey: "unused", maxRetries: 0 });
  const stream = client.messages.stream({ model, max_tokens: 64, messages });
  stream.on("text", (t) => { text += t; });
  const final = await stream.finalMessage();
  if (final.stop_reason !== "end_turn") throw new Error(`stop_reason ${final.stop_reason}`);
} else {
  throw new Error(`unknown sdk ${sdk}`);
}
process.stdout.write(text);
