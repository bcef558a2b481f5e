package io.loraspark.pipeline.serve;

import io.javalin.http.Context;
import io.loraspark.pipeline.generate.TextGeneration;
import io.loraspark.train.decode.AdapterRegistry;
import io.loraspark.train.decode.Result;
import io.loraspark.train.decode.SamplingParams;
import io.loraspark.train.model.ModelConfig;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicLong;

/**
 * {@code POST /v1/completions} and {@code /v1/chat/completions}: a request's model (the base, an
 * adapter, the router, or the {@code adapters} composition extension) and prompt become a decode
 * request; a chat request also stops at its template's end-of-turn token ({@link
 * ChatPrompt#endOfTurnIds}). {@link CompletionResponse} answers it.
 */
final class Completions {
  private final ServerState s;
  private final AtomicLong seeds = new AtomicLong(System.nanoTime());

  Completions(ServerState state) {
    this.s = state;
  }

  /**
   * What a request resolved to: its prompt, sampling, adapters and the model name it answers as.
   */
  record Plan(
      ApiRequest api,
      int[] promptIds,
      SamplingParams params,
      List<String> names,
      float[] weights,
      String answeringModel) {}

  void handle(Context ctx, boolean chat) throws IOException {
    ApiRequest api = ApiRequest.parse(LoraServer.body(ctx), chat);
    Plan plan = plan(api);
    Semaphore more = api.stream() ? new Semaphore(0) : null;
    DecodeService.Ticket ticket = s.decode().admit();
    AdapterRegistry.MixLease lease;
    try {
      lease = s.catalog().acquire(plan.names(), plan.weights());
    } catch (RuntimeException e) {
      ticket.close();
      throw e;
    }
    TextGeneration.TextRequest request;
    CompletableFuture<Result> future;
    try {
      request =
          s.text()
              .request(
                  plan.promptIds(),
                  lease.mix(),
                  plan.params(),
                  api.stops(),
                  !api.ignoreEos(),
                  more == null ? null : more::release);
      future = ticket.submit(request.request());
    } catch (RuntimeException e) {
      ticket.close();
      lease.close();
      throw e instanceof IllegalArgumentException iae
          ? ApiError.invalid(null, iae.getMessage())
          : e;
    }
    future.whenComplete((r, e) -> lease.close());
    CompletionResponse response = new CompletionResponse(s, plan, request.text(), future);
    if (more == null) {
      response.plain(ctx);
    } else {
      response.stream(ctx, more);
    }
  }

  private Plan plan(ApiRequest api) {
    ModelConfig c = s.config();
    int[] ids = promptIds(api);
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
    Set<Integer> stopIds =
        api.chat() && !api.ignoreEos() ? s.chatPrompt().endOfTurnIds() : Set.of();
    SamplingParams params =
        new SamplingParams(
            maxTokens, api.temperature(), api.topK(), api.topP(), seed, stopIds, api.logprobs());
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

  /** The prompt's token ids: the chat template's, the request's own (checked), or encoded. */
  private int[] promptIds(ApiRequest api) {
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
      ids = s.text().tokenizer().encode(api.prompt(), true);
    }
    if (ids.length == 0) {
      throw ApiError.invalid("prompt", "the prompt is empty");
    }
    return ids;
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
}
