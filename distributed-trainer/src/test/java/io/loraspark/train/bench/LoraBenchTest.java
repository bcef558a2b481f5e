package io.loraspark.train.bench;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.loraspark.train.model.ModelConfig;
import io.loraspark.train.model.ModelWeights;
import io.loraspark.train.model.Projection;
import io.loraspark.train.model.precision.OneDnn;
import io.loraspark.train.model.precision.Precision;
import io.loraspark.train.model.quant.BaseQuant;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LoraBenchTest {
  /** C 64, L 2, NH 4 (HD 16), NKV 2, F 128, V 256; K 2 adapters of B 2 rows, T 16, r 4. */
  private static BenchSpec tiny(int adapters) {
    return new BenchSpec(
        64,
        2,
        4,
        2,
        128,
        256,
        false,
        2,
        16,
        4,
        List.of(Projection.values()),
        adapters,
        1,
        1,
        2,
        1,
        7);
  }

  @Test
  void flopCountFollowsTheStatedFormula() {
    BenchSpec s = tiny(2);
    // P per layer: q 64*64 + k,v 2*64*32 + o 64*64 + gate,up,down 3*64*128 = 36864; x2 + lm_head
    assertThat(FlopCount.frozenMatmulParams(s.modelConfig())).isEqualTo(2 * 36864 + 256 * 64);
    // sum r(in+out) per layer: 4 * (128 + 96 + 96 + 128 + 192 + 192 + 192) = 4096; x2 layers
    assertThat(FlopCount.loraParams(s.modelConfig(), s)).isEqualTo(8192);
    long perToken = 4L * 90112 + 12L * 2 * 16 * 64 + 6L * 8192;
    assertThat(FlopCount.perStep(s.modelConfig(), s, 64)).isEqualTo(64.0 * perToken);
  }

  @Test
  void benchPrintsOneJsonLineWithSplitMfuMemoryAndKernel() throws Exception {
    BenchResult r = LoraBench.run(tiny(2));
    JsonNode json = new ObjectMapper().readTree(r.toJson());
    assertThat(r.toJson()).as("one line").doesNotContain("\n");
    assertThat(json.get("tokens_per_s").asDouble()).isPositive();
    assertThat(json.get("adapter_tokens_per_s").asDouble()).as("K > 1 reports it").isPositive();
    BenchResult.Split split = r.split();
    assertThat(split.forwardMs() + split.backwardMs() + split.optimizerMs())
        .as("the split adds up to about the step")
        .isBetween(split.stepMs() * 0.5, split.stepMs() * 1.5);
    assertThat(json.get("base").asText()).isEqualTo("synthetic");
    assertThat(json.get("precision").asText()).isEqualTo("fp32");
    assertThat(json.get("mfu_peak").asText()).isEqualTo("gemm_peak_gflops");
    assertThat(json.has("bf16_gemm_peak_gflops")).as("fp32 run").isFalse();
    // random tokens over V = 256 from a near-uniform model: the loss is about ln 256 = 5.55
    assertThat(r.finalLoss()).isBetween(5.0, 6.0);
    assertThat(json.get("flops_per_step").asDouble()).isEqualTo(64.0 * 434176);
    assertThat(r.gemmPeakGflops()).isPositive();
    assertThat(r.mfu()).isPositive();
    assertThat(json.get("kernel_threads").asInt())
        .as("the vector kernels take the BLAS thread count")
        .isEqualTo(tiny(2).threads());
    assertThat(json.get("openblas_core").asText())
        .as("kernel detected")
        .isNotBlank()
        .isNotEqualTo("unknown");
    BenchResult.Memory m = r.memory();
    assertThat(m.baseBytes())
        .as("float32 base weights")
        .isEqualTo(4L * (2 * 256 * 64 + 64 + 2 * (2 * 64 + 36864)));
    assertThat(m.perAdapterBytes()).isEqualTo(4L * 8192 * 5);
    assertThat(m.activationBytes()).isPositive();
    // VmHWM (kB, /proc/self/status) against VmRSS read earlier by another route: equal within
    // rounding when this JVM's peak came before the bench (earlier tests in the same fork)
    assertThat(m.peakResidentBytes()).isGreaterThan((long) (0.99 * m.runtimeBytes()));
  }

  @Test
  void aCheckpointOfTheSyntheticWeightsTrainsAsTheSyntheticModelDoes(@TempDir Path dir)
      throws Exception {
    BenchSpec s = tiny(1);
    DecodeBench.writeModel(SyntheticModel.create(s.modelConfig(), s.seed()), dir.resolve("same"));
    DecodeBench.writeModel(SyntheticModel.create(s.modelConfig(), 99), dir.resolve("other"));
    BenchResult synthetic = LoraBench.run(s);
    BenchResult same = LoraBench.run(s, dir.resolve("same"));
    BenchResult other = LoraBench.run(s, dir.resolve("other"));
    assertThat(same.finalLoss())
        .as("same weights, tokens and adapter init: the same loss, bit for bit")
        .isEqualTo(synthetic.finalLoss());
    assertThat(other.finalLoss())
        .as("the checkpoint's weights are used")
        .isNotEqualTo(same.finalLoss());
    assertThat(new ObjectMapper().readTree(same.toJson()).get("base").asText())
        .isEqualTo(dir.resolve("same").toString());
  }

  /**
   * The synthetic weights are a function of the seed alone, in every process: the first values are
   * those of SplittableRandom's documented sequence for the seed (embedding N(0, 0.4²) first, then
   * layer 0's input norm 1 + N(0, 0.02²)), which ND4J's native generator did not give across JVMs.
   */
  @Test
  void syntheticWeightsFollowTheSeedsSequence() {
    ModelConfig c = tiny(1).modelConfig();
    java.util.SplittableRandom ref = new java.util.SplittableRandom(7);
    ModelWeights w = SyntheticModel.create(c, 7);
    assertThat(w.embed().getFloat(0, 0)).isEqualTo((float) (0.4 * ref.nextGaussian()));
    assertThat(w.embed().getFloat(0, 1)).isEqualTo((float) (0.4 * ref.nextGaussian()));
    for (long i = 2; i < (long) c.vocabSize() * c.hiddenSize(); i++) {
      ref.nextGaussian();
    }
    assertThat(w.layers().get(0).inputNorm().getFloat(0))
        .isEqualTo((float) (1.0 + 0.02 * ref.nextGaussian()));
  }

  /**
   * The synthetic weights go straight into their native buffers: building a 13 MB model allocates
   * well under 1 MB on the Java heap (a float[] of each matrix first made the base's size in
   * humongous garbage, for which G1 committed heap that then stayed in the bench's peak RSS).
   */
  @Test
  void syntheticWeightsAreDrawnWithoutAHeapCopy() {
    SyntheticModel.create(tiny(1).modelConfig(), 1); // classes loaded, ND4J started
    ModelConfig c =
        new ModelConfig(
            "LlamaForCausalLM",
            256,
            512,
            2,
            4,
            2,
            64,
            4096,
            64,
            1e-6,
            1e4,
            false,
            false,
            false,
            false,
            1,
            2);
    var threads =
        (com.sun.management.ThreadMXBean) java.lang.management.ManagementFactory.getThreadMXBean();
    long before = threads.getCurrentThreadAllocatedBytes();
    ModelWeights w = SyntheticModel.create(c, 3);
    long heap = threads.getCurrentThreadAllocatedBytes() - before;
    assertThat(w.totalBytes()).as("the model's native bytes").isGreaterThan(13_000_000L);
    assertThat(heap).as("Java heap bytes allocated building it").isLessThan(1_000_000L);
  }

  @Test
  void aCheckpointOfAnotherShapeIsRejectedNamingKeyAndFlag(@TempDir Path dir) {
    BenchSpec s = tiny(1);
    DecodeBench.writeModel(SyntheticModel.create(s.modelConfig(), 1), dir);
    BenchSpec threeLayers =
        new BenchSpec(
            64, 3, 4, 2, 128, 256, false, 2, 16, 4, List.of(Projection.Q), 1, 1, 1, 1, 0, 7);
    assertThatThrownBy(() -> LoraBench.run(threeLayers, dir))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("config.json has num_hidden_layers 2 but bench was given --layers 3");
  }

  @Test
  void aBf16RunReportsMfuAgainstTheBf16PeakAndKeepsTheFp32One() throws Exception {
    assertThat(OneDnn.probe().failure()).as("oneDNN must load on linux-x86_64").isEmpty();
    BenchSpec f = tiny(1);
    BenchSpec s =
        new BenchSpec(
            f.hidden(),
            f.layers(),
            f.heads(),
            f.kvHeads(),
            f.ffn(),
            f.vocab(),
            f.tied(),
            f.batch(),
            f.seq(),
            f.rank(),
            f.targets(),
            1,
            1,
            1,
            2,
            1,
            7,
            BaseQuant.NONE,
            false,
            Precision.BF16);
    BenchResult r = LoraBench.run(s);
    JsonNode json = new ObjectMapper().readTree(r.toJson());
    assertThat(json.get("precision").asText()).isEqualTo("bf16");
    assertThat(json.get("gemm_impl").asText()).startsWith("onednn ");
    assertThat(r.peak().bf16Gflops()).isPositive();
    assertThat(json.get("gemm_peak_gflops").asDouble()).as("fp32 peak kept").isPositive();
    assertThat(json.get("mfu_peak").asText()).isEqualTo("bf16_gemm_peak_gflops");
    assertThat(r.mfu())
        .isCloseTo(
            r.flopsPerStep() / (r.split().stepMs() / 1e3) / (r.peak().bf16Gflops() * 1e9),
            within(1e-12));
  }

  /**
   * A tied synthetic model starts near the uniform loss ln V, as an untied one does: its embedding
   * (also the head) is not drawn at the 0.4 that made a 30-layer tied model's logits so spread that
   * 9–13% of its softmax probabilities were subnormal floats (loss ~94 at V 49152).
   */
  @Test
  void aTiedSyntheticModelStartsNearTheUniformLoss() {
    BenchSpec tied =
        new BenchSpec(
            64, 2, 4, 2, 128, 256, true, 2, 16, 4, List.of(Projection.Q), 1, 1, 1, 1, 0, 7);
    assertThat(LoraBench.run(tied).finalLoss()).as("ln 256 = 5.55").isBetween(5.0, 6.0);
  }

  @Test
  void rejectsAShapeTheModelCannotHave() {
    assertThatThrownBy(
            () ->
                new BenchSpec(
                    64,
                    2,
                    4,
                    3,
                    128,
                    256,
                    false,
                    2,
                    16,
                    4,
                    List.of(Projection.Q),
                    1,
                    1,
                    1,
                    2,
                    0,
                    0))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("num_key_value_heads");
  }
}
