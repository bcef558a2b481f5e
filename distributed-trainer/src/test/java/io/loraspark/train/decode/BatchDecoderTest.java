package io.loraspark.train.decode;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.loraspark.train.cache.AdapterSource;
import io.loraspark.train.lora.LoraMethod;
import io.loraspark.train.lora.PeftAdapter;
import io.loraspark.train.model.CheckpointLoader;
import io.loraspark.train.model.ModelConfig;
import io.loraspark.train.model.ModelWeights;
import io.loraspark.train.model.TestModels;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Requests through the scheduler on the real stories260K checkpoint: llama2.c's greedy ids, seeded
 * sampling, continuous batching that changes no request's tokens, stop ids and the context limit,
 * and adapters leased from the cache while they are unloaded.
 */
class BatchDecoderTest {
  static ModelWeights base;
  static ModelConfig config;
  @TempDir Path dir;

  @BeforeAll
  static void load() {
    base = CheckpointLoader.load(TestModels.STORIES);
    config = base.config();
  }

  @Test
  void greedyReproducesLlama2cIds() throws Exception {
    JsonNode ref =
        new ObjectMapper()
            .readTree(Path.of("../fixtures/reference/llama2c_greedy_vectors.json").toFile());
    int[] prompt = ints(ref.get("prompt_ids"));
    int[] want = ints(ref.get("generated_ids"));
    Result r =
        BatchDecoder.generate(
            new DecodeEngine(base),
            new Request(prompt, AdapterMix.NONE, SamplingParams.greedy(want.length, Set.of())));
    assertThat(r.tokens()).isEqualTo(want);
    assertThat(r.finishReason()).isEqualTo(Result.LENGTH);
  }

  private static int[] ints(JsonNode array) {
    int[] out = new int[array.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = array.get(i).asInt();
    }
    return out;
  }

  @Test
  void aSeededSampleIsTheSameOnEveryRun() {
    DecodeEngine engine = new DecodeEngine(base);
    int[] prompt = {1, 403, 407, 261, 378};
    Result a = sample(engine, prompt, 7);
    Result b = sample(new DecodeEngine(base), prompt, 7);
    Result c = sample(engine, prompt, 8);
    assertThat(b.tokens()).isEqualTo(a.tokens());
    assertThat(b.logprobs()).isEqualTo(a.logprobs());
    assertThat(c.tokens()).as("another seed").isNotEqualTo(a.tokens());
  }

  private static Result sample(DecodeEngine engine, int[] prompt, long seed) {
    SamplingParams p = new SamplingParams(40, 1.0, 0, 0.95, seed, Set.of(), true);
    return BatchDecoder.generate(engine, new Request(prompt, AdapterMix.NONE, p));
  }

  /**
   * Five requests (four adapters of three methods and the base, two of them sampled), three joining
   * after the first steps, small steps forcing chunked prefill: every request gets exactly the
   * tokens and log-probabilities it gets alone.
   */
  @Test
  void continuousBatchingChangesNoRequestsTokens() {
    List<Request> requests = new ArrayList<>();
    LoraMethod[] methods = {LoraMethod.LORA, LoraMethod.DORA, LoraMethod.VERA, LoraMethod.ADALORA};
    for (int k = 0; k < 5; k++) {
      AdapterMix mix =
          k == 4
              ? AdapterMix.NONE
              : AdapterMix.of(
                  DecodeAdapter.of("a" + k, DecodeFixture.adapter(base, methods[k], 4, k)));
      int[] prompt = DecodeFixture.randomIds(3 + 5 * k, config.vocabSize(), k);
      double t = k % 2 == 0 ? 0 : 0.9;
      requests.add(new Request(prompt, mix, new SamplingParams(24, t, 0, 1, k, Set.of(), true)));
    }
    List<Result> alone = new ArrayList<>();
    for (Request r : requests) {
      alone.add(BatchDecoder.generate(new DecodeEngine(base), r));
    }
    BatchDecoder together = new BatchDecoder(new DecodeEngine(base), 7);
    List<CompletableFuture<Result>> futures = new ArrayList<>();
    for (int k = 0; k < 5; k++) {
      futures.add(together.submit(requests.get(k)));
      if (k >= 1) {
        together.step(); // the later requests join a batch already decoding
        together.step();
      }
    }
    together.run();
    for (int k = 0; k < 5; k++) {
      Result r = futures.get(k).join();
      assertThat(r.tokens()).as("request %d tokens", k).isEqualTo(alone.get(k).tokens());
      assertThat(r.logprobs()).as("request %d logprobs", k).isEqualTo(alone.get(k).logprobs());
    }
  }

  /**
   * The decode kernels split each projection's outputs (and the rows' attention) over the kernel
   * threads; a step on two threads gives the same bits as on one (stories260K's projections are
   * large enough to split at 16 rows).
   */
  @Test
  void twoThreadsGiveTheSameBitsAsOne() {
    int[] prompt = DecodeFixture.randomIds(40, config.vocabSize(), 5);
    SamplingParams p = new SamplingParams(30, 0.8, 0, 1, 3, Set.of(), true);
    int before = io.loraspark.train.model.Kernels.threads();
    try {
      io.loraspark.train.model.Kernels.threads(1);
      Result one =
          BatchDecoder.generate(new DecodeEngine(base), new Request(prompt, AdapterMix.NONE, p));
      io.loraspark.train.model.Kernels.threads(2);
      Result two =
          BatchDecoder.generate(new DecodeEngine(base), new Request(prompt, AdapterMix.NONE, p));
      assertThat(two.tokens()).isEqualTo(one.tokens());
      assertThat(two.logprobs()).isEqualTo(one.logprobs());
    } finally {
      io.loraspark.train.model.Kernels.threads(before);
    }
  }

  @Test
  void aStopIdEndsTheRequestAndIsKept() {
    int[] prompt = {1, 403, 407, 261, 378};
    Result free =
        BatchDecoder.generate(
            new DecodeEngine(base),
            new Request(prompt, AdapterMix.NONE, SamplingParams.greedy(10, Set.of())));
    int stop = free.tokens()[3];
    Result stopped =
        BatchDecoder.generate(
            new DecodeEngine(base),
            new Request(prompt, AdapterMix.NONE, SamplingParams.greedy(10, Set.of(stop))));
    assertThat(stopped.tokens()).hasSizeLessThanOrEqualTo(4).endsWith(stop);
    assertThat(stopped.finishReason()).isEqualTo(Result.STOP);
  }

  @Test
  void theContextBoundsPromptAndGeneration() {
    DecodeEngine engine = new DecodeEngine(base);
    int max = config.maxPositions();
    BatchDecoder d = new BatchDecoder(engine, 64);
    assertThatThrownBy(
            () ->
                d.submit(
                    new Request(
                        new int[max + 1], AdapterMix.NONE, SamplingParams.greedy(1, Set.of()))))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage(
            "the prompt has %d tokens but the model's context (max_position_embeddings) is %d",
            max + 1, max);
    Result r =
        BatchDecoder.generate(
            engine,
            new Request(
                DecodeFixture.randomIds(max - 3, config.vocabSize(), 1),
                AdapterMix.NONE,
                SamplingParams.greedy(100, Set.of())));
    assertThat(r.tokens()).as("tokens until the context is full").hasSize(4);
    assertThat(r.finishReason()).isEqualTo(Result.LENGTH);
    Result none =
        BatchDecoder.generate(
            engine,
            new Request(new int[] {1, 2}, AdapterMix.NONE, SamplingParams.greedy(0, Set.of())));
    assertThat(none.tokens()).isEmpty();
    assertThatThrownBy(
            () ->
                d.submit(
                    new Request(
                        new int[] {1, config.vocabSize()},
                        AdapterMix.NONE,
                        SamplingParams.greedy(1, Set.of()))))
        .hasMessageContaining("prompt token 1: id 512 is outside the vocabulary [0, 512)");
  }

  /**
   * An adapter leased by a running request keeps decoding after it is unloaded; a new request for
   * its name loads it again; the cache counts its bytes as the decoding form's tensor bytes.
   */
  @Test
  void anAdapterInUseSurvivesItsUnload() throws Exception {
    Path root = dir.resolve("adapters");
    PeftAdapter.save(
        root.resolve("tuned"), DecodeFixture.adapter(base, LoraMethod.LORA, 8, 3), null);
    AdapterRegistry registry = new AdapterRegistry(base, AdapterSource.namesUnder(root), 64L << 20);
    int[] prompt = {1, 403, 407, 261, 378};
    BatchDecoder d = new BatchDecoder(new DecodeEngine(base), 16);
    Result alone;
    try (AdapterRegistry.MixLease lease = registry.acquire(List.of("tuned"), new float[] {1f})) {
      alone =
          BatchDecoder.generate(
              new DecodeEngine(base),
              new Request(prompt, lease.mix(), SamplingParams.greedy(12, Set.of())));
    }
    AdapterRegistry.MixLease lease = registry.acquire(List.of("tuned"), new float[] {1f});
    DecodeAdapter held = lease.mix().adapters().get(0);
    assertThat(registry.cache().stats().bytesInUse()).isEqualTo(held.bytes());
    CompletableFuture<Result> f =
        d.submit(new Request(prompt, lease.mix(), SamplingParams.greedy(12, Set.of())));
    d.step();
    d.step();
    assertThat(registry.cache().unload("tuned")).isTrue();
    assertThat(registry.cache().names()).doesNotContain("tuned");
    d.run();
    lease.close();
    assertThat(f.join().tokens()).as("decoded through the unload").isEqualTo(alone.tokens());
    assertThat(registry.cache().stats().bytesInUse()).as("released after the lease").isZero();
    try (AdapterRegistry.MixLease again = registry.acquire(List.of("tuned"), new float[] {1f})) {
      assertThat(again.mix().adapters().get(0)).isNotSameAs(held);
    }
    assertThat(registry.cache().stats().loads()).isEqualTo(2);
    assertThatThrownBy(() -> registry.acquire(List.of("../escape"), new float[] {1f}))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("..");
  }
}
