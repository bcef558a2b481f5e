package io.loraspark.train.decode;

import io.loraspark.train.model.ModelConfig;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;

/**
 * Continuous batching over one {@link DecodeEngine}: requests join between steps and leave when
 * done; each step carries one row per decoding request plus prompt chunks of requests still in
 * prefill, up to a row budget. {@link #submit} may be called from any thread; {@link #step} and
 * {@link #run} only from the one decoding thread that owns the engine.
 */
public final class BatchDecoder {
  private final DecodeEngine engine;
  private final ModelConfig c;
  private final int maxRows;
  private final int maxActive;
  private final ConcurrentLinkedQueue<Sequence> pending = new ConcurrentLinkedQueue<>();
  private final List<Sequence> active = new ArrayList<>();
  private final StepRows rows = new StepRows();
  private int lastDecodeRows;
  private int lastPrefillRows;

  /**
   * @param maxRows the most rows one step carries (decode rows first, then prompt chunks), ≥ 1
   */
  public BatchDecoder(DecodeEngine engine, int maxRows) {
    this(engine, maxRows, Integer.MAX_VALUE);
  }

  /**
   * @param maxRows the most rows one step carries (decode rows first, then prompt chunks), ≥ 1
   * @param maxActive the most requests running at once (each holds a KV cache); more wait queued
   */
  public BatchDecoder(DecodeEngine engine, int maxRows, int maxActive) {
    ModelConfig.require(maxRows >= 1, "a step carries at least 1 row, not %d", maxRows);
    ModelConfig.require(maxActive >= 1, "at least 1 request must run at once, not %d", maxActive);
    this.engine = engine;
    this.c = engine.config();
    this.maxRows = maxRows;
    this.maxActive = maxActive;
  }

  /**
   * Queues a request; it joins at the next step.
   *
   * @return completes with the result on the decoding thread (or exceptionally if a step fails);
   *     cancelling it (a client that went away) drops the request and its cache at the next step
   * @throws IllegalArgumentException for an empty or too long prompt, a token id outside the
   *     vocabulary, or an adapter made for another base shape
   */
  public CompletableFuture<Result> submit(Request request) {
    int[] prompt = request.promptIds();
    ModelConfig.require(prompt.length > 0, "the prompt must have at least one token");
    ModelConfig.require(
        prompt.length <= c.maxPositions(),
        "the prompt has %d tokens but the model's context (max_position_embeddings) is %d",
        prompt.length,
        c.maxPositions());
    for (int i = 0; i < prompt.length; i++) {
      int id = prompt[i];
      ModelConfig.require(
          id >= 0 && id < c.vocabSize(),
          "prompt token %d: id %d is outside the vocabulary [0, %d)",
          i,
          id,
          c.vocabSize());
    }
    for (DecodeAdapter a : request.mix().adapters()) {
      ModelConfig.require(
          a.fits(c),
          "adapter '%s' was made for a base of another shape than this one (%d layers, hidden %d)",
          a.name(),
          c.numLayers(),
          c.hiddenSize());
    }
    Sequence s = new Sequence(request, c);
    pending.add(s);
    return s.done;
  }

  /** Whether any request is queued or running. */
  public boolean busy() {
    return !pending.isEmpty() || !active.isEmpty();
  }

  /** Requests queued, not yet running. */
  public int queued() {
    return pending.size();
  }

  /** Rows of the last step that decoded a request's next token (not prompt rows). */
  public int lastDecodeRows() {
    return lastDecodeRows;
  }

  /** Prompt rows of the last step. */
  public int lastPrefillRows() {
    return lastPrefillRows;
  }

  /** Steps until every submitted request is done. */
  public void run() {
    while (busy()) {
      step();
    }
  }

  /** Decodes one request alone and returns its result. */
  public static Result generate(DecodeEngine engine, Request request) {
    BatchDecoder d = new BatchDecoder(engine, 64);
    CompletableFuture<Result> f = d.submit(request);
    d.run();
    return f.join();
  }

  /**
   * One step: admits queued requests, runs the rows of every running one, picks their tokens and
   * retires the finished.
   */
  public void step() {
    active.removeIf(s -> s.done.isDone()); // cancelled by their callers
    while (active.size() < maxActive) {
      Sequence s = pending.poll();
      if (s == null) {
        break;
      }
      if (s.done.isDone()) {
        continue;
      }
      if (s.request.params().maxNewTokens() == 0) {
        s.finish(Result.LENGTH);
      } else {
        active.add(s);
      }
    }
    rows.clear();
    lastDecodeRows = 0;
    int budget = maxRows;
    for (Sequence s : active) { // decode rows first: they keep their streams moving
      if (s.prefilled == s.prompt.length) {
        s.logitSlot = rows.add(s.lastToken, s.length - 1, s.cache, s.request.mix(), true);
        budget--;
        lastDecodeRows++;
      }
    }
    for (Sequence s : active) {
      if (s.prefilled < s.prompt.length && budget > 0) {
        int chunk = Math.min(budget, s.prompt.length - s.prefilled);
        s.logitSlot = -1;
        for (int i = 0; i < chunk; i++) {
          int p = s.prefilled + i;
          boolean last = p == s.prompt.length - 1;
          int slot = rows.add(s.prompt[p], p, s.cache, s.request.mix(), last);
          if (last) {
            s.logitSlot = slot;
          }
        }
        s.prefilled += chunk;
        budget -= chunk;
      } else if (s.prefilled < s.prompt.length) {
        s.logitSlot = -1;
      }
    }
    lastPrefillRows = rows.count() - lastDecodeRows;
    if (rows.count() == 0) {
      return;
    }
    try {
      engine.step(rows);
    } catch (RuntimeException e) {
      for (Sequence s : active) {
        s.done.completeExceptionally(e);
      }
      active.clear();
      throw e;
    }
    pick();
  }

  /** Samples the next token of every request that got logits, and retires the finished. */
  private void pick() {
    int vocab = c.vocabSize();
    long now = System.nanoTime();
    for (Iterator<Sequence> it = active.iterator(); it.hasNext(); ) {
      Sequence s = it.next();
      if (s.logitSlot < 0) {
        continue;
      }
      if (s.count == 0) {
        s.prefillNanos = now - s.submitted;
      }
      int off = s.logitSlot * vocab;
      int token = s.sampler.next(rows.logits(), off, vocab);
      double lp =
          s.request.params().logprobs()
              ? Sampler.logprob(rows.logits(), off, vocab, token)
              : Double.NaN;
      String reason = s.accept(token, lp, now);
      if (reason != null) {
        s.finish(reason);
        it.remove();
      }
    }
  }

  /** A running request: its cache, sampler and tokens so far. */
  private static final class Sequence {
    final Request request;
    final int[] prompt;
    final KvCache cache;
    final Sampler sampler;
    final CompletableFuture<Result> done = new CompletableFuture<>();
    final long submitted = System.nanoTime();
    int[] tokens;
    double[] logprobs;
    int count;
    int prefilled; // prompt positions already in the cache
    int length; // positions of the sequence so far (prompt + generated)
    int lastToken;
    int logitSlot = -1;
    long prefillNanos;
    long firstTokenNanos = -1;

    Sequence(Request request, ModelConfig c) {
      this.request = request;
      this.prompt = request.promptIds();
      int max = request.params().maxNewTokens();
      this.cache = new KvCache(c, (int) Math.min(c.maxPositions(), (long) prompt.length + max));
      this.sampler = new Sampler(request.params());
      this.tokens = new int[Math.min(max, 256)];
      this.logprobs = request.params().logprobs() ? new double[tokens.length] : null;
      this.length = prompt.length;
    }

    /** Records a picked token; returns the finish reason when it ends the request, else null. */
    String accept(int token, double logprob, long now) {
      if (count == tokens.length) {
        tokens = Arrays.copyOf(tokens, count * 2);
        logprobs = logprobs == null ? null : Arrays.copyOf(logprobs, count * 2);
      }
      if (count == 0) {
        firstTokenNanos = now - submitted;
      }
      tokens[count] = token;
      if (logprobs != null) {
        logprobs[count] = logprob;
      }
      count++;
      if (request.sink() != null) {
        request.sink().token(token, logprob);
      }
      lastToken = token;
      length++;
      if (request.params().stopIds().contains(token)
          || (request.stop() != null && request.stop().stop(tokens, count))) {
        return Result.STOP;
      }
      if (count >= request.params().maxNewTokens() || length > cache.capacity()) {
        return Result.LENGTH; // the next token would need a position the context lacks
      }
      return null;
    }

    void finish(String reason) {
      long total = System.nanoTime() - submitted;
      done.complete(
          new Result(
              prompt.length,
              Arrays.copyOf(tokens, count),
              logprobs == null ? null : Arrays.copyOf(logprobs, count),
              reason,
              count == 0 ? total : prefillNanos,
              firstTokenNanos,
              total));
    }
  }
}
