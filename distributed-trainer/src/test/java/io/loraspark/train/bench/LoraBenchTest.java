package io.loraspark.train.bench;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.loraspark.train.model.Projection;
import java.util.List;
import org.junit.jupiter.api.Test;

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
    assertThat(r.forwardMs() + r.backwardMs() + r.optimizerMs())
        .as("the split adds up to about the step")
        .isBetween(r.stepMs() * 0.5, r.stepMs() * 1.5);
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
