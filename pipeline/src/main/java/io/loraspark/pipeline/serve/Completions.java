package io.loraspark.pipeline.serve;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.javalin.http.Context;
import io.loraspark.pipeline.generate.TextGeneration;
import io.loraspark.prep.tokenize.TextTokenizer;
import io.loraspark.train.decode.AdapterRegistry;
import io.loraspark.train.decode.Request;
import io.loraspark.train.decode.Result;
import io.loraspark.train.decode.SamplingParams;
import io.loraspark.train.model.ModelConfig;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * {@code POST /v1/completions} and {@code /v1/chat/completions}: a request's model (the base, an
 * adapter, the router, or the {@code adapters} composition extension) and prompt become a decode
 * request; the answer is one JSON body, or server-sent events ending in {@code data: [DONE]}.
 */
final class Completions {
  private static final JsonNodeFactory J = JsonNodeFactory.instance;
  private static final long WAIT_MILLIS = 50;

  private final ServerState s;
  private final AtomicLong seeds = new AtomicLong(System.nanoTime());

  Completions(ServerState state) {
    this.s = state;
  }

  /**
   * What a request resolved to: its prompt, sampling, adapters and the model name it answers as.
   */
  private record Plan(
      ApiRequest api,
      int[] promptIds,
      SamplingParams params,
      List<String> names,
      float[] weights,
      String answeringModel) {}

  void handle(Context ctx, boolean chat) throws IOException {
    ApiRequest api = ApiRequest.parse(LoraServer.body(ctx), chat);
    Plan plan = plan(api);
    LinkedBlockingQueue<Integer> tokens = api.stream() ? new LinkedBlockingQueue<>() : null;
    CompletableFuture<Result> future;
    DecodeService.Ticket ticket = s.decode().admit();
    AdapterRegistry.MixLease lease;
    try {
      lease = s.catalog().acquire(plan.names(), plan.weights());
    } catch (RuntimeException e) {
      ticket.close();
      throw e;
    }
    try {
      TextGeneration text = s.text();
      Request base = text.request(plan.promptIds(), lease.mix(), plan.params(), api.stops());
      Request request =
          tokens == null
              ? base
              : new Request(
                  base.promptIds(),
                  base.mix(),
                  base.params(),
                  base.stop(),
                  (id, lp) -> tokens.add(id));
      future = ticket.submit(request);
    } catch (RuntimeException e) {
      ticket.close();
      lease.close();
      throw e instanceof IllegalArgumentException iae
          ? ApiError.invalid(null, iae.getMessage())
          : e;
    }
    future.whenComplete((r, e) -> lease.close());
    if (tokens == null) {
      Result r = await(future);
      s.metrics()
          .finished(r.promptTokens(), r.tokens().length, r.firstTokenNanos(), r.totalNanos());
      ctx.json(body(plan, r));
    } else {
      stream(ctx, plan, future, tokens);
    }
  }

  private Plan plan(ApiRequest api) {
    TextTokenizer tok = s.text().tokenizer();
    ModelConfig c = s.config();
    int[] ids;
    if (api.chat()) {
      ids = s.chatPrompt().ids(api.messages());
    } else if (api.promptIds() != null) {
      ids = api.promptIds();
      for (int i = 0; i < ids.length; i++) {
        if (ids[i] < 0 || ids[i] >= c.vocabSize()) {
          throw ApiError.invalid(
              "prompt",
              "prompt token " + i + " is outside the vocabulary [0, " + c.vocabSize() + ")");
        }
      }
    } else {
      ids = tok.encode(api.prompt(), true);
    }
    if (ids.length == 0) {
      throw ApiError.invalid("prompt", "the prompt is empty");
    }
    int room = c.maxPositions() - ids.length;
    if (room < 1) {
      throw ApiError.tooLong(
          "the prompt has " + ids.length + " tokens; the model's context is " + c.maxPositions());
    }
    int maxTokens = api.maxTokens() != null ? api.maxTokens() : api.chat() ? room : 16;
    if (maxTokens > room) {
      throw ApiError.invalid(
          api.chat() ? "max_completion_tokens" : "max_tokens",
          "max_tokens "
              + maxTokens
              + " and the prompt's "
              + ids.length
              + " tokens exceed the model's context of "
              + c.maxPositions()
              + " tokens");
    }
    long seed = api.seed() != null ? api.seed() : seeds.incrementAndGet();
    SamplingParams params =
        new SamplingParams(
            maxTokens, api.temperature(), api.topK(), api.topP(), seed, Set.of(), api.logprobs());
    List<String> names = new ArrayList<>();
    float[] weights;
    String answering = api.model();
    if (!api.adapters().isEmpty()) {
      weights = new float[api.adapters().size()];
      for (int i = 0; i < weights.length; i++) {
        names.add(api.adapters().get(i).name());
        weights[i] = api.adapters().get(i).weight();
      }
    } else if (api.model().equals(s.baseName())) {
      weights = new float[0];
    } else if (api.model().equals(s.routerName())) {
      answering = route(ids);
      names.add(answering);
      weights = new float[] {1f};
    } else if (s.catalog().contains(api.model())) {
      names.add(api.model());
      weights = new float[] {1f};
    } else {
      throw ApiError.unknownModel(api.model());
    }
    return new Plan(api, ids, params, names, weights, answering);
  }

  /**
   * The adapter under which the prompt is most likely (the base when no adapter is known). The
   * candidates are scored in groups that fit the adapter cache: each group is leased, scored in one
   * fused pass and released before the next.
   */
  private String route(int[] ids) {
    List<String> candidates = s.catalog().names();
    if (candidates.isEmpty() || ids.length < 2) {
      return candidates.isEmpty() ? s.baseName() : candidates.get(0);
    }
    Best best = new Best();
    List<String> group = new ArrayList<>();
    List<AdapterRegistry.MixLease> leases = new ArrayList<>();
    try {
      for (int k = 0; k < candidates.size(); ) {
        try {
          leases.add(s.catalog().acquire(List.of(candidates.get(k)), new float[] {1f}));
          group.add(candidates.get(k));
          k++;
        } catch (ApiError e) {
          if (e.status == 404) { // unloaded since the list was taken
            k++;
          } else if (e.status == 429 && !group.isEmpty()) { // the cache is full: score these first
            score(ids, group, leases, best);
          } else {
            throw e;
          }
        }
      }
      if (!group.isEmpty()) {
        score(ids, group, leases, best);
      }
    } finally {
      leases.forEach(AdapterRegistry.MixLease::close);
    }
    return best.name != null ? best.name : s.baseName();
  }

  /** The lowest mean NLL seen so far and its adapter. */
  private static final class Best {
    String name;
    double nll = Double.POSITIVE_INFINITY;
  }

  /** Scores one group, keeps the best, releases the group's leases. */
  private void score(
      int[] ids, List<String> group, List<AdapterRegistry.MixLease> leases, Best best) {
    Router.Choice c = s.router().route(ids, group, leases.toArray(AdapterRegistry.MixLease[]::new));
    for (int k = 0; k < group.size(); k++) {
      if (c.meanNll()[k] < best.nll) {
        best.nll = c.meanNll()[k];
        best.name = group.get(k);
      }
    }
    leases.forEach(AdapterRegistry.MixLease::close);
    leases.clear();
    group.clear();
  }

  private static Result await(CompletableFuture<Result> f) {
    try {
      return f.get();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      f.cancel(false);
      throw ApiError.unavailable("interrupted");
    } catch (ExecutionException e) {
      Throwable cause = e.getCause();
      if (cause instanceof IllegalArgumentException iae) {
        throw ApiError.invalid(null, iae.getMessage());
      }
      throw new IllegalStateException("decoding failed: " + cause, cause);
    }
  }

  /** Server-sent events: one chunk per text delta, a final chunk with finish_reason, [DONE]. */
  private void stream(
      Context ctx, Plan plan, CompletableFuture<Result> future, LinkedBlockingQueue<Integer> tokens)
      throws IOException {
    ctx.status(200);
    ctx.res().setContentType("text/event-stream");
    ctx.res().setHeader("Cache-Control", "no-cache");
    OutputStream out = ctx.res().getOutputStream();
    StreamText text = new StreamText(s.text().tokenizer(), plan.api().stops());
    String id = id(plan.api());
    long created = System.currentTimeMillis() / 1000;
    try {
      if (plan.api().chat()) {
        ObjectNode role = J.objectNode();
        role.putObject("delta").put("role", "assistant").put("content", "");
        send(out, chunk(plan, id, created, role, null));
      }
      while (!future.isDone() || !tokens.isEmpty()) {
        Integer t = tokens.poll(WAIT_MILLIS, TimeUnit.MILLISECONDS);
        if (t != null) {
          String delta = text.add(t);
          if (!delta.isEmpty()) {
            send(out, chunk(plan, id, created, delta(plan, delta), null));
          }
        }
      }
      Result r = await(future);
      s.metrics()
          .finished(r.promptTokens(), r.tokens().length, r.firstTokenNanos(), r.totalNanos());
      String rest = text.finish(s.text().completion(r, s.text().eosIds(), plan.api().stops()));
      send(out, chunk(plan, id, created, delta(plan, rest), r.finishReason()));
      if (plan.api().includeUsage()) {
        ObjectNode usage = J.objectNode();
        usage.put("id", id).put("object", object(plan.api(), true)).put("created", created);
        usage.put("model", plan.answeringModel());
        usage.putArray("choices");
        usage.set("usage", usage(r));
        send(out, usage);
      }
      out.write("data: [DONE]\n\n".getBytes(StandardCharsets.UTF_8));
      out.flush();
    } catch (IOException | InterruptedException e) {
      future.cancel(false); // the client went away: its row leaves the batch at the next step
      if (e instanceof InterruptedException) {
        Thread.currentThread().interrupt();
      }
    }
  }

  private static void send(OutputStream out, ObjectNode event) throws IOException {
    out.write(("data: " + event + "\n\n").getBytes(StandardCharsets.UTF_8));
    out.flush();
  }

  private ObjectNode chunk(
      Plan plan, String id, long created, ObjectNode choiceBody, String finish) {
    ObjectNode o = J.objectNode();
    o.put("id", id).put("object", object(plan.api(), true)).put("created", created);
    o.put("model", plan.answeringModel());
    ObjectNode choice = o.putArray("choices").addObject();
    choice.put("index", 0);
    choice.setAll(choiceBody);
    choice.putNull("logprobs");
    choice.put("finish_reason", finish);
    return o;
  }

  private static ObjectNode delta(Plan plan, String text) {
    if (plan.api().chat()) {
      ObjectNode d = J.objectNode();
      d.putObject("delta").put("content", text);
      return d;
    }
    return J.objectNode().put("text", text);
  }

  private ObjectNode body(Plan plan, Result r) {
    ApiRequest api = plan.api();
    String completion = s.text().completion(r, s.text().eosIds(), api.stops());
    ObjectNode o = J.objectNode();
    o.put("id", id(api)).put("object", object(api, false));
    o.put("created", System.currentTimeMillis() / 1000).put("model", plan.answeringModel());
    ObjectNode choice = o.putArray("choices").addObject();
    choice.put("index", 0);
    if (api.chat()) {
      choice.putObject("message").put("role", "assistant").put("content", completion);
    } else {
      choice.put("text", completion);
    }
    choice.set("logprobs", api.logprobs() ? logprobs(api, r) : J.nullNode());
    choice.put("finish_reason", r.finishReason());
    o.set("usage", usage(r));
    return o;
  }

  /** The chosen tokens' log-probabilities in the endpoint's shape (no alternatives). */
  private ObjectNode logprobs(ApiRequest api, Result r) {
    TextTokenizer tok = s.text().tokenizer();
    ObjectNode lp = J.objectNode();
    if (api.chat()) {
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

  private static String object(ApiRequest api, boolean chunk) {
    if (api.chat()) {
      return chunk ? "chat.completion.chunk" : "chat.completion";
    }
    return "text_completion";
  }

  private static String id(ApiRequest api) {
    return (api.chat() ? "chatcmpl-" : "cmpl-") + UUID.randomUUID().toString().replace("-", "");
  }
}
