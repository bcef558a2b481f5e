package io.loraspark.train.decode;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.loraspark.train.lora.LoraConfig;
import io.loraspark.train.lora.LoraMethod;
import io.loraspark.train.lora.LoraWeights;
import io.loraspark.train.model.ModelConfig;
import io.loraspark.train.model.ModelWeights;
import io.loraspark.train.model.Projection;
import io.loraspark.train.model.precision.Precision;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.factory.Nd4j;

/**
 * KV-cached decoding against the full forward pass of the training engine (an independent path:
 * ND4J GEMMs over the whole sequence with a causal mask): every position's logits within 1e-5 of
 * the largest logit, for Llama, Mistral and Qwen2 checkpoints with GQA and biases, bare and with a
 * LoRA, DoRA, VeRA, AdaLoRA and Delta-LoRA adapter; and batch invariance bit for bit.
 */
class DecodeEngineTest {
  static final double TOLERANCE = 1e-5;
  @TempDir Path dir;

  static Stream<Arguments> cases() {
    return Stream.of(
        Arguments.of("LlamaForCausalLM", true, false, null),
        Arguments.of("LlamaForCausalLM", false, true, LoraMethod.LORA),
        Arguments.of("MistralForCausalLM", false, false, LoraMethod.LORA),
        Arguments.of("MistralForCausalLM", false, false, LoraMethod.DORA),
        Arguments.of("Qwen2ForCausalLM", true, true, LoraMethod.VERA),
        Arguments.of("Qwen2ForCausalLM", false, true, LoraMethod.DORA),
        Arguments.of("LlamaForCausalLM", true, false, LoraMethod.ADALORA),
        Arguments.of("LlamaForCausalLM", false, false, LoraMethod.DELTA_LORA),
        Arguments.of("LlamaForCausalLM", false, false, LoraMethod.PISSA));
  }

  @ParameterizedTest(name = "{0} tied={1} bias={2} {3}")
  @MethodSource("cases")
  void cachedLogitsEqualTheFullForwardAtEveryPosition(
      String arch, boolean tied, boolean bias, LoraMethod method) {
    ModelWeights base = DecodeFixture.model(dir, arch, tied, bias, 11);
    LoraWeights w = method == null ? null : DecodeFixture.adapter(base, method, 3, 5);
    ModelConfig c = base.config();
    int[] ids = DecodeFixture.randomIds(23, c.vocabSize(), 3);
    float[][] reference = DecodeFixture.fullLogits(base, DecodeFixture.inference(w), ids);
    if (w != null) { // the adapter must matter, or agreeing with the base would pass
      float[][] bare = DecodeFixture.fullLogits(base, DecodeFixture.inference(null), ids);
      assertThat(DecodeFixture.relativeError(bare[ids.length - 1], reference[ids.length - 1]))
          .as("the adapter's effect on the last logits")
          .isGreaterThan(1e-3);
    }

    DecodeEngine engine = new DecodeEngine(base);
    AdapterMix mix = w == null ? AdapterMix.NONE : AdapterMix.of(DecodeAdapter.of("a", w));
    KvCache cache = new KvCache(c, ids.length);
    StepRows rows = new StepRows();
    int prefill = 9; // positions 0-8 in one step, then one per step
    for (int p = 0; p < prefill; p++) {
      rows.add(ids[p], p, cache, mix, true);
    }
    engine.step(rows);
    for (int p = 0; p < prefill; p++) {
      assertClose(DecodeFixture.row(rows.logits(), p, c.vocabSize()), reference[p], p);
    }
    for (int p = prefill; p < ids.length; p++) {
      rows.clear();
      rows.add(ids[p], p, cache, mix, true);
      engine.step(rows);
      assertClose(DecodeFixture.row(rows.logits(), 0, c.vocabSize()), reference[p], p);
    }
  }

  /**
   * Adapters on some projections only, in one step: the groups that read one input (q, k, v; gate,
   * up) have a branch for some of their projections and not for others, and each request still gets
   * the full forward's logits of its own adapter (or of the base).
   */
  @Test
  void adaptersOnSomeProjectionsOfAGroupShareAStep() {
    ModelWeights base = DecodeFixture.model(dir, "Qwen2ForCausalLM", false, true, 11);
    ModelConfig c = base.config();
    LoraWeights[] ws = {
      DecodeFixture.adapter(
          base, LoraMethod.LORA, 3, 5, List.of(Projection.Q, Projection.V, Projection.UP)),
      DecodeFixture.adapter(
          base, LoraMethod.LORA, 2, 6, List.of(Projection.K, Projection.GATE, Projection.DOWN)),
      null
    };
    int[] ids = DecodeFixture.randomIds(9, c.vocabSize(), 4);
    float[][] bare = DecodeFixture.fullLogits(base, DecodeFixture.inference(null), ids);
    DecodeEngine engine = new DecodeEngine(base);
    StepRows rows = new StepRows();
    for (LoraWeights w : ws) {
      AdapterMix mix = w == null ? AdapterMix.NONE : AdapterMix.of(DecodeAdapter.of("a", w));
      KvCache cache = new KvCache(c, ids.length);
      for (int p = 0; p < ids.length; p++) {
        rows.add(ids[p], p, cache, mix, p == ids.length - 1);
      }
    }
    engine.step(rows);
    for (int r = 0; r < ws.length; r++) {
      float[] want = DecodeFixture.fullLogits(base, DecodeFixture.inference(ws[r]), ids)[8];
      if (ws[r] != null) {
        assertThat(DecodeFixture.relativeError(bare[8], want))
            .as("adapter %d's effect on the last logits", r)
            .isGreaterThan(1e-3);
      }
      assertClose(DecodeFixture.row(rows.logits(), r, c.vocabSize()), want, 8);
    }
  }

  private static void assertClose(float[] got, float[] want, int position) {
    assertThat(DecodeFixture.relativeError(got, want))
        .as("position %d: max |cached - full| / max |full|", position)
        .isLessThanOrEqualTo(TOLERANCE);
  }

  /**
   * One request's logits are the same bits whether its prompt is prefilled at once, in chunks, or
   * token by token next to rows of four other requests with other adapters (and the base), with
   * float32 and with bf16 weights.
   */
  @ParameterizedTest(name = "bf16={0}")
  @ValueSource(booleans = {false, true})
  void aRowGetsTheSameBitsWhateverSharesItsStep(boolean bf16) {
    ModelWeights base = DecodeFixture.model(dir, "Qwen2ForCausalLM", false, true, 11);
    ModelConfig c = base.config();
    DecodeAdapter[] adapters = new DecodeAdapter[4];
    LoraMethod[] methods = {LoraMethod.LORA, LoraMethod.DORA, LoraMethod.VERA, LoraMethod.LORA};
    for (int k = 0; k < 4; k++) {
      adapters[k] = DecodeAdapter.of("a" + k, DecodeFixture.adapter(base, methods[k], 2 + k, k));
    }
    DecodeEngine engine = new DecodeEngine(base, bf16 ? Precision.BF16 : Precision.FP32);
    int[] ids = DecodeFixture.randomIds(17, c.vocabSize(), 9);
    AdapterMix mine = AdapterMix.of(adapters[0]);

    float[] alone = lastLogits(engine, ids, mine, new int[] {ids.length}, null);
    float[] chunked = lastLogits(engine, ids, mine, new int[] {5, 1, 7, 4}, null);
    AdapterMix[] others = {
      AdapterMix.NONE,
      AdapterMix.of(adapters[1]),
      AdapterMix.of(adapters[2]),
      AdapterMix.of(adapters[3])
    };
    float[] crowded = lastLogits(engine, ids, mine, new int[] {1, 2, 3, 4, 7}, others);
    assertThat(bits(chunked)).as("chunked prefill vs one step").isEqualTo(bits(alone));
    assertThat(bits(crowded)).as("next to four other requests vs alone").isEqualTo(bits(alone));
  }

  /**
   * The bf16 engine (weights rounded to bfloat16, arithmetic in float32) against the float32 full
   * forward, with a LoRA adapter: every position's logits within 2e-2 relative (bf16 keeps 8
   * mantissa bits, a relative rounding of at most 2^-9 per weight), and not equal to them.
   */
  @Test
  void bf16LogitsAreWithinItsRoundingOfTheFullForward() {
    ModelWeights base = DecodeFixture.model(dir, "LlamaForCausalLM", false, true, 11);
    LoraWeights w = DecodeFixture.adapter(base, LoraMethod.LORA, 3, 5);
    ModelConfig c = base.config();
    int[] ids = DecodeFixture.randomIds(12, c.vocabSize(), 3);
    float[][] reference = DecodeFixture.fullLogits(base, DecodeFixture.inference(w), ids);
    KvCache cache = new KvCache(c, ids.length);
    StepRows rows = new StepRows();
    for (int p = 0; p < ids.length; p++) {
      rows.add(ids[p], p, cache, AdapterMix.of(DecodeAdapter.of("a", w)), true);
    }
    new DecodeEngine(base, Precision.BF16).step(rows);
    for (int p = 0; p < ids.length; p++) {
      assertThat(
              DecodeFixture.relativeError(
                  DecodeFixture.row(rows.logits(), p, c.vocabSize()), reference[p]))
          .as("position %d", p)
          .isLessThan(2e-2)
          .isGreaterThan(TOLERANCE);
    }
  }

  /** Prefills {@code ids} in the given chunks, each step shared with a row of each other mix. */
  private static float[] lastLogits(
      DecodeEngine engine, int[] ids, AdapterMix mix, int[] chunks, AdapterMix[] others) {
    ModelConfig c = engine.config();
    KvCache cache = new KvCache(c, ids.length);
    KvCache[] otherCaches = new KvCache[others == null ? 0 : others.length];
    for (int o = 0; o < otherCaches.length; o++) {
      otherCaches[o] = new KvCache(c, chunks.length);
    }
    StepRows rows = new StepRows();
    int p = 0;
    int slot = -1;
    for (int step = 0; step < chunks.length; step++) {
      rows.clear();
      for (int o = 0; o < otherCaches.length; o++) { // a row of another request before ours
        rows.add(7 + o, step, otherCaches[o], others[o], true);
      }
      for (int i = 0; i < chunks[step]; i++, p++) {
        slot = rows.add(ids[p], p, cache, mix, p == ids.length - 1);
      }
      engine.step(rows);
    }
    return DecodeFixture.row(rows.logits(), slot, c.vocabSize());
  }

  private static int[] bits(float[] v) {
    int[] out = new int[v.length];
    for (int i = 0; i < v.length; i++) {
      out[i] = Float.floatToRawIntBits(v[i]);
    }
    return out;
  }

  /**
   * Two LoRA adapters composed at request time with weights 0.7 and −1.3 score as one adapter whose
   * ΔW is their weighted sum (A stacked, B concatenated with weight × scaling folded in), run by
   * the training engine.
   */
  @Test
  void composedAdaptersEqualTheirWeightedSumOfUpdates() {
    ModelWeights base = DecodeFixture.model(dir, "LlamaForCausalLM", false, true, 11);
    ModelConfig c = base.config();
    LoraWeights w1 = DecodeFixture.adapter(base, LoraMethod.LORA, 2, 1);
    LoraWeights w2 = DecodeFixture.adapter(base, LoraMethod.LORA, 3, 2);
    float k1 = 0.7f;
    float k2 = -1.3f;
    LoraConfig sumConfig = new LoraConfig(5, 5, 0.0, DecodeFixture.ALL, false);
    LoraWeights sum = LoraWeights.init(base, sumConfig, 0, DataType.FLOAT);
    for (LoraWeights.Module m : sum.modules()) {
      LoraWeights.Module m1 = w1.module(m.layer(), m.proj());
      LoraWeights.Module m2 = w2.module(m.layer(), m.proj());
      m.a().assign(Nd4j.vstack(m1.a(), m2.a()));
      double s1 = k1 * w1.config().scaling();
      double s2 = k2 * w2.config().scaling();
      m.b().assign(Nd4j.hstack(m1.b().mul(s1), m2.b().mul(s2)));
    }
    int[] ids = DecodeFixture.randomIds(12, c.vocabSize(), 4);
    float[][] reference = DecodeFixture.fullLogits(base, DecodeFixture.inference(sum), ids);

    AdapterMix mix =
        new AdapterMix(
            List.of(DecodeAdapter.of("one", w1), DecodeAdapter.of("two", w2)),
            new float[] {k1, k2});
    DecodeEngine engine = new DecodeEngine(base);
    KvCache cache = new KvCache(c, ids.length);
    StepRows rows = new StepRows();
    for (int p = 0; p < ids.length; p++) {
      rows.add(ids[p], p, cache, mix, true);
    }
    engine.step(rows);
    for (int p = 0; p < ids.length; p++) {
      assertClose(DecodeFixture.row(rows.logits(), p, c.vocabSize()), reference[p], p);
    }
  }

  @Test
  void doraDoesNotCompose() {
    ModelWeights base = DecodeFixture.model(dir, "LlamaForCausalLM", true, false, 11);
    DecodeAdapter lora = DecodeAdapter.of("l", DecodeFixture.adapter(base, LoraMethod.LORA, 2, 1));
    DecodeAdapter dora = DecodeAdapter.of("d", DecodeFixture.adapter(base, LoraMethod.DORA, 2, 1));
    assertThatThrownBy(() -> new AdapterMix(List.of(lora, dora), new float[] {1f, 1f}))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("adapter 'd' is dora")
        .hasMessageContaining("compose only");
  }

  @Test
  void anAdapterForAnotherShapeIsRefused() {
    ModelWeights base = DecodeFixture.model(dir.resolve("a"), "LlamaForCausalLM", true, false, 11);
    String wide =
        io.loraspark.train.model.TestModels.config("LlamaForCausalLM", true, false)
            .replace("\"intermediate_size\": 24", "\"intermediate_size\": 32");
    ModelWeights other =
        io.loraspark.train.model.CheckpointLoader.load(
            io.loraspark.train.model.TestModels.writeRandom(dir.resolve("b"), wide, 3));
    DecodeAdapter foreign =
        DecodeAdapter.of("x", DecodeFixture.adapter(other, LoraMethod.LORA, 2, 1));
    BatchDecoder decoder = new BatchDecoder(new DecodeEngine(base), 8);
    assertThatThrownBy(
            () ->
                decoder.submit(
                    new Request(
                        new int[] {1, 2},
                        AdapterMix.of(foreign),
                        SamplingParams.greedy(3, java.util.Set.of()))))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("adapter 'x' was made for a base of another shape");
    assertThat(List.of(decoder.busy())).containsExactly(false);
  }
}
