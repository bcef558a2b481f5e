// Drives `lora-pipeline serve` with the official OpenAI Node client (run by OpenAiNodeClientTest).
//
//   node client.mjs <baseURL, e.g. http://127.0.0.1:PORT/v1> <directory of the spare adapter "gamma">
//
// Prints exactly one JSON object on stdout: what each step observed. A step that throws where it
// should not records {"unexpected": <error>} and the script carries on, so the Java side can name
// every failing step at once. Diagnostics go to stderr only.
import OpenAI from 'openai';
import { VERSION } from 'openai/version';

const [baseURL, gammaPath] = process.argv.slice(2);
if (!baseURL || !gammaPath) {
  console.error('usage: node client.mjs <baseURL> <gamma adapter dir>');
  process.exit(2);
}

// maxRetries 0: a 5xx or 429 must show up here, not be hidden behind the client's retries.
const client = new OpenAI({ baseURL, apiKey: 'unused', maxRetries: 0, timeout: 60_000 });

const PROMPT = 'Once upon a time';
const MESSAGES = [{ role: 'user', content: 'Tell me a story.' }];
const GREEDY = { max_tokens: 20, temperature: 0 };

/** An error as plain JSON: its class, the client's error classes it belongs to, status and body. */
function describe(e) {
  if (!(e instanceof Error)) {
    return { name: typeof e, message: String(e) };
  }
  return {
    name: e.constructor?.name ?? e.name,
    message: e.message,
    isAPIError: e instanceof OpenAI.APIError,
    isNotFoundError: e instanceof OpenAI.NotFoundError,
    isBadRequestError: e instanceof OpenAI.BadRequestError,
    status: e.status ?? null,
    error: e.error ?? null,
    param: e.param ?? null,
    code: e.code ?? null,
    type: e.type ?? null,
    stack: e instanceof OpenAI.APIError ? undefined : e.stack,
  };
}

/** Runs one step; its result, or {unexpected} if it threw. */
async function step(name, fn) {
  const t0 = Date.now();
  try {
    const r = await fn();
    console.error(`step ${name}: ok in ${Date.now() - t0} ms`);
    return r;
  } catch (e) {
    console.error(`step ${name}: threw after ${Date.now() - t0} ms:`, e);
    return { unexpected: describe(e) };
  }
}

/** Awaits a call that must be refused; what it was refused with. */
async function rejection(promise) {
  try {
    const r = await promise;
    return { rejected: false, value: r };
  } catch (e) {
    return { rejected: true, ...describe(e) };
  }
}

/** A text completion's observable parts. */
function completion(r) {
  const c = r.choices[0];
  return {
    object: r.object,
    model: r.model,
    text: c.text,
    finish_reason: c.finish_reason,
    usage: r.usage ?? null,
    choices: r.choices.length,
  };
}

/** Collects a stream from its async iterator: text deltas in order, finish reasons, models. */
async function collect(stream, chat) {
  let text = '';
  const finishReasons = [];
  const models = new Set();
  const objects = new Set();
  const roles = [];
  let chunks = 0;
  let usage = null;
  for await (const chunk of stream) {
    chunks++;
    if (chunk.usage) {
      usage = chunk.usage;
    }
    models.add(chunk.model);
    objects.add(chunk.object);
    for (const c of chunk.choices) {
      const piece = chat ? c.delta?.content : c.text;
      if (typeof piece === 'string') {
        text += piece;
      }
      if (chat && c.delta?.role) {
        roles.push(c.delta.role);
      }
      if (c.finish_reason != null) {
        finishReasons.push(c.finish_reason);
      }
    }
  }
  return {
    text,
    finish_reasons: finishReasons,
    models: [...models],
    objects: [...objects],
    roles,
    chunks,
    usage,
  };
}

const out = { node: process.version, openai: VERSION, baseURL };

out.models = await step('models.list', async () => {
  const page = await client.models.list();
  const iterated = [];
  for await (const m of client.models.list()) {
    iterated.push(m.id);
  }
  return {
    ids: page.data.map((m) => m.id),
    iterated,
    objects: [...new Set(page.data.map((m) => m.object))],
    parents: Object.fromEntries(page.data.map((m) => [m.id, m.parent ?? null])),
  };
});

out.completion = await step('completions.create', async () =>
  completion(await client.completions.create({ model: 'alpha', prompt: PROMPT, ...GREEDY })),
);

out.completionStream = await step('completions.create stream', async () =>
  collect(
    await client.completions.create({
      model: 'alpha',
      prompt: PROMPT,
      ...GREEDY,
      stream: true,
      stream_options: { include_usage: true },
    }),
    false,
  ),
);

out.chat = await step('chat.completions.create', async () => {
  const r = await client.chat.completions.create({ model: 'alpha', messages: MESSAGES, ...GREEDY });
  const c = r.choices[0];
  return {
    object: r.object,
    model: r.model,
    role: c.message.role,
    content: c.message.content,
    finish_reason: c.finish_reason,
    usage: r.usage ?? null,
  };
});

out.chatStream = await step('chat.completions.create stream', async () =>
  collect(
    await client.chat.completions.create({
      model: 'alpha',
      messages: MESSAGES,
      ...GREEDY,
      stream: true,
    }),
    true,
  ),
);

// vLLM's runtime adapter endpoints are not in the SDK: the client's raw helpers post to them
// (path relative to baseURL; a non-JSON answer comes back as text).
out.load = await step('post /load_lora_adapter', async () => {
  const answer = await client.post('/load_lora_adapter', {
    body: { lora_name: 'gamma', lora_path: gammaPath },
  });
  const listed = (await client.models.list()).data.map((m) => m.id);
  const r = await client.completions.create({ model: 'gamma', prompt: PROMPT, ...GREEDY });
  return { answer, listed, completion: completion(r) };
});

out.unload = await step('post /unload_lora_adapter', async () => {
  const answer = await client.post('/unload_lora_adapter', { body: { lora_name: 'gamma' } });
  const listed = (await client.models.list()).data.map((m) => m.id);
  const after = await rejection(
    client.completions.create({ model: 'gamma', prompt: PROMPT, ...GREEDY }),
  );
  const again = await rejection(client.post('/unload_lora_adapter', { body: { lora_name: 'gamma' } }));
  return { answer, listed, after, again };
});

out.auto = await step('completions.create model auto', async () =>
  completion(await client.completions.create({ model: 'auto', prompt: PROMPT, ...GREEDY })),
);

out.badRequest = await step('completions.create temperature -1', async () =>
  rejection(client.completions.create({ model: 'alpha', prompt: PROMPT, temperature: -1 })),
);

process.stdout.write(JSON.stringify(out) + '\n');
