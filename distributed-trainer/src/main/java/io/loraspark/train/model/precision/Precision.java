package io.loraspark.train.model.precision;

import io.loraspark.train.model.ModelWeights;
import io.loraspark.train.model.Transformer;
import java.util.Arrays;
import java.util.Locale;
import java.util.concurrent.atomic.AtomicBoolean;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The precision of the GEMMs over frozen weights (projections, LM head) and of attention's GEMMs in
 * training: {@code fp32}; {@code bf16} (oneDNN bf16 matmuls with f32 accumulation, everything else
 * fp32); or {@code auto}, resolved per executor by {@link #resolve}: bf16 only where oneDNN's
 * effective ISA has AMX (with AVX512_BF16 alone bf16 also pays once oneDNN's threads sleep between
 * calls, but making it the default there would change every such run's results).
 */
public enum Precision {
  FP32("fp32"),
  BF16("bf16"),
  AUTO("auto");

  private static final Logger LOG = LoggerFactory.getLogger(Precision.class);
  private static final AtomicBoolean FALLBACK_TOLD = new AtomicBoolean();

  /** The default for training, sweeps and bench. */
  public static final Precision DEFAULT = AUTO;

  private final String key;

  Precision(String key) {
    this.key = key;
  }

  /** The name in configs, flags and outputs. */
  public String key() {
    return key;
  }

  /**
   * @throws IllegalArgumentException naming the valid values
   */
  public static Precision parse(String name) {
    String n = name == null ? "" : name.trim().toLowerCase(Locale.ROOT);
    for (Precision p : values()) {
      if (p.key.equals(n)) {
        return p;
      }
    }
    throw new IllegalArgumentException(
        "unknown precision '"
            + name
            + "'; valid: "
            + String.join(", ", Arrays.stream(values()).map(Precision::key).toList()));
  }

  /**
   * Resolves this setting with this JVM's oneDNN (loading it if needed); when auto falls back to
   * fp32 because oneDNN did not load, says so once per JVM (a WARN line).
   */
  public Precision resolve() {
    OneDnn.Probe probe = OneDnn.probe();
    if (this == AUTO && !probe.loaded() && !FALLBACK_TOLD.getAndSet(true)) {
      LOG.warn("precision auto: oneDNN did not load ({}), training in fp32", probe.failure());
    }
    return resolve(probe);
  }

  /**
   * Resolves this setting for what {@code probe} found: fp32 and bf16 stay, auto becomes bf16 only
   * with AMX. Never returns auto.
   *
   * @throws IllegalStateException for bf16 when oneDNN did not load
   */
  public Precision resolve(OneDnn.Probe probe) {
    return switch (this) {
      case FP32 -> FP32;
      case AUTO -> probe.amx() ? BF16 : FP32;
      case BF16 -> {
        if (!probe.loaded()) {
          throw new IllegalStateException(
              "precision bf16 needs oneDNN, which did not load: " + probe.failure());
        }
        yield BF16;
      }
    };
  }

  /**
   * A training model over {@code weights} in this precision, resolved in this JVM: fp32 GEMMs over
   * the weights as they are, or bf16 GEMMs over a {@link Bf16Gemms#packedBase} of them, which packs
   * every projection now and closes their fp32 arrays as it goes (so {@code weights} must not serve
   * fp32 GEMMs afterwards; the base then holds one fp32 copy's bytes, and loading peaks one layer
   * above that). Auto stays fp32 on a quantized base, whose point is its memory; bf16 on one packs
   * its dequantised values (see {@link Bf16Gemms#packedBase}).
   *
   * @throws IllegalArgumentException for bf16 on a non-float32 base
   * @throws IllegalStateException for bf16 when oneDNN did not load
   */
  public Transformer model(ModelWeights weights) {
    if (resolve(weights.quantized() != null) != BF16) {
      return new Transformer(weights);
    }
    if (!"PASSIVE".equalsIgnoreCase(System.getenv("OMP_WAIT_POLICY"))
        && !SPIN_TOLD.getAndSet(true)) {
      LOG.warn(
          "precision bf16: OMP_WAIT_POLICY is not PASSIVE, so oneDNN's OpenMP threads spin between"
              + " matmuls on the cores the Java kernels use next (steps ran 1.5-2x slower here);"
              + " bin/lora-pipeline and conf/spark-defaults.conf set it, set it for other launchers");
    }
    return Bf16Gemms.apply(new Transformer(Bf16Gemms.packedBase(weights, PACK_ROWS)));
  }

  private static final AtomicBoolean SPIN_TOLD = new AtomicBoolean();

  // the row count whose bf16 primitive picks the packed layout; products of any rows reuse it
  private static final int PACK_ROWS = 512;

  /**
   * What {@link #model} runs on a base that is {@code quantized} or not, resolved in this JVM: fp32
   * or bf16 (auto stays fp32 on a quantized base).
   */
  public Precision resolve(boolean quantized) {
    return this == FP32 || (this == AUTO && quantized) ? FP32 : resolve();
  }
}
