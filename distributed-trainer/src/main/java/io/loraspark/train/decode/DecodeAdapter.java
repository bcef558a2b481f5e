package io.loraspark.train.decode;

import io.loraspark.train.lora.DenseDeltaState;
import io.loraspark.train.lora.DoraState;
import io.loraspark.train.lora.LoraForm;
import io.loraspark.train.lora.LoraMethod;
import io.loraspark.train.lora.LoraWeights;
import io.loraspark.train.model.ModelConfig;
import io.loraspark.train.model.Projection;
import java.util.Arrays;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * One adapter in the form decoding applies it to a row: per adapted (layer, projection) a low-rank
 * pair with every scale folded in, so the branch is {@code y += B' (A' x)} for every method that
 * adds to W (LoRA, LoRA-FA, PiSSA's {@code s(BA − B₀A₀)}, VeRA's {@code Λ_b B Λ_d A}, AdaLoRA's
 * {@code s B E A}, Delta-LoRA's plus its dense ΔW), and DoRA's per-output rescaling {@code y = b +
 * m/‖W + sBA‖ ⊙ (W x + s B A x)}. Immutable once built; read by any number of decoding threads.
 */
public final class DecodeAdapter {

  /**
   * One adapted projection.
   *
   * @param rank r' of the folded pair
   * @param at A' transposed, [in, r'], row-major: A'x is a sum of in rows of it, the r' outputs in
   *     the lanes of one vector (for r' up to the vector length), as B'u is
   * @param bt B' transposed, [r', out], row-major, scaling folded in: the branch's output is a sum
   *     of r' rows of it, one vector pass each
   * @param delta Delta-LoRA's dense ΔW [out, in], or null
   * @param doraScale DoRA's m / ‖W + sBA‖ per output row [out], or null
   */
  public record Branch(int rank, float[] at, float[] bt, float[] delta, float[] doraScale) {
    long bytes() {
      return 4L * (at.length + bt.length + len(delta) + len(doraScale));
    }

    private static int len(float[] v) {
      return v == null ? 0 : v.length;
    }
  }

  private final String name;
  private final LoraMethod method;
  private final ModelConfig model;
  private final Branch[] branches; // [layer * 7 + projection], null where not adapted
  private final long bytes;
  private final int maxRank;

  private DecodeAdapter(String name, LoraMethod method, ModelConfig model, Branch[] branches) {
    this.name = name;
    this.method = method;
    this.model = model;
    this.branches = branches;
    this.bytes = Arrays.stream(branches).filter(b -> b != null).mapToLong(Branch::bytes).sum();
    this.maxRank =
        Arrays.stream(branches).filter(b -> b != null).mapToInt(Branch::rank).max().orElse(0);
  }

  /**
   * The decoding form of trained or loaded adapter weights {@code w} (float32 copies; {@code w} is
   * not kept).
   *
   * @param name how requests name it
   */
  public static DecodeAdapter of(String name, LoraWeights w) {
    ModelConfig c = w.model();
    LoraMethod method = w.config().method();
    Branch[] branches = new Branch[c.numLayers() * Projection.values().length];
    for (LoraWeights.Module m : w.modules()) {
      branches[index(m.layer(), m.proj())] = branch(w, m);
    }
    return new DecodeAdapter(name, method, c, branches);
  }

  private static Branch branch(LoraWeights w, LoraWeights.Module m) {
    LoraForm.Factors f = LoraForm.factors(w, m); // every method's scales folded in
    INDArray a = f.a(); // [r', in]
    INDArray b = f.scaledB(); // [out, r']
    float[] delta = m.state() instanceof DenseDeltaState d ? floats(d.delta()) : null;
    float[] dora = null;
    if (m.state() instanceof DoraState ds) { // m / ‖W + s B A‖ per row, the norm detached (PEFT)
      INDArray adapted = ds.base().castTo(DataType.DOUBLE).add(b.mmul(a));
      dora = floats(ds.magnitude().castTo(DataType.DOUBLE).reshape(-1).div(adapted.norm2(1)));
    }
    return new Branch((int) a.rows(), floats(a.transpose()), floats(b.transpose()), delta, dora);
  }

  /** An array's values as float32 in C order (a copy). */
  static float[] floats(INDArray x) {
    float[] v = x.castTo(DataType.FLOAT).dup('c').data().asFloat();
    return v.length == x.length() ? v : Arrays.copyOf(v, (int) x.length());
  }

  static int index(int layer, Projection p) {
    return layer * Projection.values().length + p.ordinal();
  }

  public String name() {
    return name;
  }

  public LoraMethod method() {
    return method;
  }

  /** Whether its update adds to others' (not DoRA's rescaling, not PiSSA's re-based W). */
  public boolean additive() {
    return method.variant().additive();
  }

  /** The branch on projection {@code p} of layer {@code layer}, or null where not adapted. */
  Branch branch(int layer, Projection p) {
    return branches[index(layer, p)];
  }

  /** Bytes of the branch arrays held in RAM: what an adapter cache counts. */
  public long bytes() {
    return bytes;
  }

  /** The largest rank of its branches (0 when it adapts nothing). */
  int maxRank() {
    return maxRank;
  }

  /** Whether it was built for a base of {@code c}'s shape (layers, widths, heads). */
  public boolean fits(ModelConfig c) {
    return model.sameProjectionShapes(c);
  }

  @Override
  public String toString() {
    return name + " (" + method.key() + ", " + bytes + " bytes)";
  }
}
