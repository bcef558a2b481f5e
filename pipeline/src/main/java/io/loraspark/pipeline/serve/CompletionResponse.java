package io.loraspark.pipeline.serve;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.javalin.http.Context;
import io.loraspark.pipeline.generate.CompletionText;
import io.loraspark.prep.tokenize.TextTokenizer;
import io.loraspark.train.decode.Result;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.UUID;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * The answer to one completion request once it is decoding: one JSON body, or server-sent events
 * ending in {@code data: [DONE]}. The text is the request's {@link CompletionText}: streamed deltas
 * are what it releases, the plain body its whole completion, so both are the same text.
 *
 * <p>A client that goes away cancels its request (its batch row is freed at the next decode step).
 * A stream notices on its next write. A plain request has nothing to write until its answer is
 * ready, so after {@link #KEEPALIVE_MILLIS} of waiting it writes a space every {@link
 * #KEEPALIVE_MILLIS} (JSON allows whitespace before the value; every JSON parser skips it) and a
 * write that fails cancels the request. Closed sockets are only seen by writing: Jetty reads
 * nothing from a connection while its request is being handled. The cost: once a space is sent the
 * status is 200, so a decoding failure after that is reported as OpenAI's error JSON in a 200 body.
 */
final class CompletionResponse {
  private static final JsonNodeFactory J = JsonNodeFactory.instance;

  /**
   * The request attribute holding the status a request was really answered with when that differs
   * from the HTTP status already sent (an error after a keep-alive space went out as 200).
   */
  static final String ANSWERED_STATUS = "lora.answeredStatus";

  /** How long a plain request waits before and between keep-alive spaces. */
  static final long KEEPALIVE_MILLIS = Long.getLong("lora.serve.keepaliveMillis", 500);

  private final ServerState s;
  private final Completions.Plan plan;
  private final CompletionText text;
  private final CompletableFuture<Result> future;
  private final String id;
  private final long created = System.currentTimeMillis() / 1000;

  CompletionResponse(
      ServerState state,
      Completions.Plan plan,
      CompletionText text,
      CompletableFuture<Result> future) {
    this.s = state;
    this.plan = plan;
    this.text = text;
    this.future = future;
    this.id =
        (plan.api().chat() ? "chatcmpl-" : "cmpl-") + UUID.randomUUID().toString().replace("-", "");
  }

  /** One JSON body once the request is done; cancels the request if the client goes away. */
  void plain(Context ctx) throws IOException {
    Result r;
    try {
      r = awaitWhileConnected(ctx);
    } catch (IOException e) { // the client went away
      cancel();
      return;
    } catch (RuntimeException e) {
      if (!ctx.res().isCommitted()) {
        throw e;
      }
      ApiError error = e instanceof ApiError a ? a : ApiError.internal(e);
      ctx.attribute(ANSWERED_STATUS, error.status); // the metrics count the error, not the 200
      write(ctx.res().getOutputStream(), error.body().toString());
      return;
    }
    s.metrics().finished(r.promptTokens(), r.tokens().length, r.firstTokenNanos(), r.totalNanos());
    if (!ctx.res().isCommitted()) {
      json(ctx);
    }
    // written here, not after the handler returns, so a drain that waits for handlers waits for it
    write(ctx.res().getOutputStream(), body(r).toString());
  }

  private static void json(Context ctx) {
    ctx.status(200);
    ctx.res().setContentType("application/json");
  }

  /**
   * Server-sent events: one chunk per text delta, a final chunk with finish_reason, [DONE].
   *
   * @param more released by the request's text each time it has more to take
   */
  void stream(Context ctx, Semaphore more) throws IOException {
    ctx.status(200);
    ctx.res().setContentType("text/event-stream");
    ctx.res().setHeader("Cache-Control", "no-cache");
    OutputStream out = ctx.res().getOutputStream();
    try {
      if (plan.api().chat()) {
        ObjectNode role = J.objectNode();
        role.putObject("delta").put("role", "assistant").put("content", "");
        send(out, chunk(role, null));
      }
      while (!future.isDone()) {
        boolean woken = more.tryAcquire(KEEPALIVE_MILLIS, TimeUnit.MILLISECONDS);
        String delta = text.take();
        if (!delta.isEmpty()) {
          send(out, chunk(delta(delta), null));
        } else if (!woken) { // nothing to send for a while (queued, prefill, held-back text):
          write(out, ": keep-alive\n\n"); // an SSE comment, so a client that left is noticed
        }
      }
      Result r = await(future);
      s.metrics()
          .finished(r.promptTokens(), r.tokens().length, r.firstTokenNanos(), r.totalNanos());
      send(out, chunk(delta(text.finish()), r.finishReason()));
      if (plan.api().includeUsage()) {
        ObjectNode usage = J.objectNode();
        usage.put("id", id).put("object", object(true)).put("created", created);
        usage.put("model", plan.answeringModel());
        usage.putArray("choices");
        usage.set("usage", usage(r));
        send(out, usage);
      }
      write(out, "data: [DONE]\n\n");
    } catch (IOException | InterruptedException e) {
      cancel(); // the client went away: its row leaves the batch at the next step
      if (e instanceof InterruptedException) {
        Thread.currentThread().interrupt();
      }
    }
  }

  /** The result, writing a keep-alive space while waiting; IOException when the client is gone. */
  private Result awaitWhileConnected(Context ctx) throws IOException {
    while (true) {
      try {
        return await(future, KEEPALIVE_MILLIS);
      } catch (TimeoutException e) {
        if (!ctx.res().isCommitted()) {
          json(ctx);
        }
        write(ctx.res().getOutputStream(), " ");
      }
    }
  }

  private void cancel() {
    if (future.cancel(false)) {
      s.metrics().cancelled();
    }
  }

  static Result await(CompletableFuture<Result> f) {
    try {
      return await(f, 0);
    } catch (TimeoutException e) {
      throw new IllegalStateException("unreachable: no timeout was set", e);
    }
  }

  /** The result, waiting up to {@code millis} (0: no limit). */
  private static Result await(CompletableFuture<Result> f, long millis) throws TimeoutException {
    try {
      return millis > 0 ? f.get(millis, TimeUnit.MILLISECONDS) : f.get();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      f.cancel(false);
      throw ApiError.unavailable("interrupted");
    } catch (CancellationException e) {
      throw ApiError.unavailable("the request was cancelled");
    } catch (ExecutionException e) {
      Throwable cause = e.getCause();
      if (cause instanceof IllegalArgumentException iae) {
        throw ApiError.invalid(null, iae.getMessage());
      }
      throw new IllegalStateException("decoding failed: " + cause, cause);
    }
  }

  private static void send(OutputStream out, ObjectNode event) throws IOException {
    write(out, "data: " + event + "\n\n");
  }

  private static void write(OutputStream out, String s) throws IOException {
    out.write(s.getBytes(StandardCharsets.UTF_8));
    out.flush();
  }

  private ObjectNode chunk(ObjectNode choiceBody, String finish) {
    ObjectNode o = J.objectNode();
    o.put("id", id).put("object", object(true)).put("created", created);
    o.put("model", plan.answeringModel());
    ObjectNode choice = o.putArray("choices").addObject();
    choice.put("index", 0);
    choice.setAll(choiceBody);
    choice.putNull("logprobs");
    choice.put("finish_reason", finish);
    return o;
  }

  private ObjectNode delta(String piece) {
    if (plan.api().chat()) {
      ObjectNode d = J.objectNode();
      d.putObject("delta").put("content", piece);
      return d;
    }
    return J.objectNode().put("text", piece);
  }

  private ObjectNode body(Result r) {
    ApiRequest api = plan.api();
    String completion = text.completion();
    ObjectNode o = J.objectNode();
    o.put("id", id).put("object", object(false));
    o.put("created", created).put("model", plan.answeringModel());
    ObjectNode choice = o.putArray("choices").addObject();
    choice.put("index", 0);
    if (api.chat()) {
      choice.putObject("message").put("role", "assistant").put("content", completion);
    } else {
      choice.put("text", completion);
    }
    choice.set("logprobs", api.logprobs() ? logprobs(r) : J.nullNode());
    choice.put("finish_reason", r.finishReason());
    o.set("usage", usage(r));
    return o;
  }

  /** The chosen tokens' log-probabilities in the endpoint's shape (no alternatives). */
  private ObjectNode logprobs(Result r) {
    TextTokenizer tok = s.text().tokenizer();
    ObjectNode lp = J.objectNode();
    if (plan.api().chat()) {
      ArrayNode content = lp.putArray("content");
      for (int i = 0; i < r.tokens().length; i++) {
        ObjectNode t = content.addObject();
        t.put("token", tok.decode(new int[] {r.tokens()[i]}, false));
        t.put("logprob", r.logprobs()[i]);
        t.putNull("bytes");
        t.putArray("top_logprobs");
      }
      return lp;
    }
    ArrayNode tokens = lp.putArray("tokens");
    ArrayNode values = lp.putArray("token_logprobs");
    for (int i = 0; i < r.tokens().length; i++) {
      tokens.add(tok.decode(new int[] {r.tokens()[i]}, false));
      values.add(r.logprobs()[i]);
    }
    lp.putNull("top_logprobs");
    return lp;
  }

  private static ObjectNode usage(Result r) {
    ObjectNode u = J.objectNode();
    u.put("prompt_tokens", r.promptTokens());
    u.put("completion_tokens", r.tokens().length);
    u.put("total_tokens", r.promptTokens() + r.tokens().length);
    return u;
  }

  private String object(boolean chunk) {
    if (plan.api().chat()) {
      return chunk ? "chat.completion.chunk" : "chat.completion";
    }
    return "text_completion";
  }
}
