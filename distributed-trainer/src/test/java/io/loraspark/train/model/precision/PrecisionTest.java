package io.loraspark.train.model.precision;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * How {@code auto} resolves: bf16 only where oneDNN's effective ISA has AMX; fp32 when oneDNN is
 * limited below it ({@code ONEDNN_MAX_CPU_ISA}, in a child JVM since oneDNN reads it once) or did
 * not load; an explicit bf16 without oneDNN is an error naming why.
 */
class PrecisionTest {
  private static final int AVX512_CORE_BF16 = 0xe7;

  @Test
  void autoIsBf16OnlyWithAmx() {
    assertThat(Precision.AUTO.resolve(new OneDnn.Probe("", OneDnn.AMX, "2.5.2")))
        .isEqualTo(Precision.BF16);
    assertThat(Precision.AUTO.resolve(new OneDnn.Probe("", AVX512_CORE_BF16, "2.5.2")))
        .as("AVX512_BF16 without AMX measured slower than fp32")
        .isEqualTo(Precision.FP32);
    assertThat(Precision.FP32.resolve(new OneDnn.Probe("", OneDnn.AMX, "2.5.2")))
        .isEqualTo(Precision.FP32);
    assertThat(Precision.BF16.resolve(new OneDnn.Probe("", AVX512_CORE_BF16, "2.5.2")))
        .isEqualTo(Precision.BF16);
  }

  @Test
  void withoutOneDnnAutoIsFp32AndBf16Fails() {
    OneDnn.Probe missing = new OneDnn.Probe("UnsatisfiedLinkError: no jnidnnl", 0, "");
    assertThat(Precision.AUTO.resolve(missing)).isEqualTo(Precision.FP32);
    assertThatThrownBy(() -> Precision.BF16.resolve(missing))
        .isInstanceOf(IllegalStateException.class)
        .hasMessage(
            "precision bf16 needs oneDNN, which did not load: UnsatisfiedLinkError: no jnidnnl");
  }

  @Test
  void parseNamesTheValidValues() {
    assertThat(Precision.parse(" BF16 ")).isEqualTo(Precision.BF16);
    assertThatThrownBy(() -> Precision.parse("fp16"))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("unknown precision 'fp16'; valid: fp32, bf16, auto");
  }

  @Test
  void thisJvmProbesTheCpu() {
    OneDnn.Probe p = OneDnn.probe();
    assertThat(p.failure()).isEmpty();
    assertThat(p.version()).isEqualTo("2.5.2");
    assertThat(p.isaName()).as("a named ISA").doesNotStartWith("0x");
    assertThat(Precision.AUTO.resolve()).isEqualTo(p.amx() ? Precision.BF16 : Precision.FP32);
  }

  /** ONEDNN_MAX_CPU_ISA really lowers the probed ISA, so it forces auto's fp32 fallback. */
  @Test
  void isaLimitForcesTheFp32Fallback() throws Exception {
    String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
    ProcessBuilder pb =
        new ProcessBuilder(
                java, "-cp", System.getProperty("java.class.path"), ProbeMain.class.getName())
            .redirectErrorStream(false);
    pb.environment().put("ONEDNN_MAX_CPU_ISA", "AVX2");
    Process proc = pb.start();
    assertThat(proc.waitFor(120, TimeUnit.SECONDS)).as("child JVM finished").isTrue();
    String out = new String(proc.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
    String err = new String(proc.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(proc.exitValue()).as("child stderr: %s", err).isZero();
    assertThat(List.of(out.split(" "))).as("isa and auto's choice").containsExactly("avx2", "fp32");
  }

  /** Prints the probed ISA and what auto resolves to. */
  public static final class ProbeMain {
    public static void main(String[] args) {
      System.out.println(OneDnn.probe().isaName() + " " + Precision.AUTO.resolve().key());
    }
  }
}
