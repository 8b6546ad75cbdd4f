// Drives a Hanlin server with the official `openai` npm client (installed by setup.sh) and prints
// one JSON object with what came back, for ServerClientTest to check. Env: BASE_URL (…/v1), MODEL,
// OPENAI_DIR (the installed node_modules/openai folder).
const { OpenAI } = require(process.env.OPENAI_DIR);

async function main() {
  const client = new OpenAI({ baseURL: process.env.BASE_URL, apiKey: 'unused', maxRetries: 0 });
  const model = process.env.MODEL;
  const messages = [
    { role: 'system', content: '你是一个乐于助人的助手。' },
    { role: 'user', content: '介绍一下北京' },
  ];
  const out = {};

  const chat = await client.chat.completions.create({
    model, messages, max_tokens: 12, temperature: 0, seed: 7,
  });
  out.chat = {
    object: chat.object,
    content: chat.choices[0].message.content,
    role: chat.choices[0].message.role,
    finish_reason: chat.choices[0].finish_reason,
    usage: chat.usage,
  };

  const stream = await client.chat.completions.create({
    model, messages, max_tokens: 12, temperature: 0, seed: 7, stream: true,
    stream_options: { include_usage: true },
  });
  const deltas = [];
  let finish = null, usage = null, chunks = 0;
  for await (const chunk of stream) {
    chunks++;
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      if (c.delta && c.delta.content) deltas.push(c.delta.content);
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  out.stream = { content: deltas.join(''), pieces: deltas.length, chunks, finish_reason: finish, usage };

  const comp = await client.completions.create({
    model, prompt: '床前明月光', max_tokens: 8, temperature: 0,
  });
  out.completion = { text: comp.choices[0].text, finish_reason: comp.choices[0].finish_reason, usage: comp.usage };

  out.errors = [];
  for (const bad of [
    { model: 'no-such-model', messages },
    { model, messages, max_tokens: 1000000 },
    { model, messages, temperature: 'hot' },
    { model, messages, n: 2 },
  ]) {
    try {
      await client.chat.completions.create(bad);
      out.errors.push({ status: 200 });
    } catch (e) {
      out.errors.push({ status: e.status, type: e.type, code: e.code, param: e.param, message: e.message });
    }
  }
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((e) => {
  console.error('client failed:', e);
  process.exit(1);
});
