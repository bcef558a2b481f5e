package io.loraspark.train.lora;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * VeRA (Kopiczko et al. 2023, "VeRA: Vector-based Random Matrix Adaptation", arXiv:2310.11454): one
 * pair of frozen random matrices shared by every adapted projection of the adapter, vera_A [r,
 * in_max] and vera_B [out_max, r], and per projection only two trained vectors, λ_d [r] and λ_b
 * [out]: {@code Δy = λ_b ⊙ (B[:out, :] (λ_d ⊙ (A[:, :in] · dropout(x))))}, so an adapter trains Σ
 * (r + out) numbers where LoRA trains Σ r·(in + out).
 *
 * <p>Followed: PEFT's {@code VeraModel}/{@code VeraLayer} (peft/tuners/vera): the shared matrices
 * are Kaiming-uniform with gain √2, {@code U(−√(6/fan_in), √(6/fan_in))} with fan_in = in_max for A
 * and r for B, drawn A first then B (from the adapter's seed here: torch's generator behind {@code
 * projection_prng_key} cannot be reproduced, so the adapter always saves them, {@code
 * save_projection: true}); λ_d starts at {@code d_initial} = 0.1 and λ_b at 0, so the adapter
 * starts as the identity; there is no alpha scaling; the branch is the per-projection slice of the
 * shared matrices. Saved as PEFT's {@code base_model.model.<module>.vera_lambda_b} [out], {@code
 * .vera_lambda_d} [r] and the shared {@code base_model.vera_A}, {@code base_model.vera_B}.
 */
final class VeraVariant implements LoraVariant {

  /** The PEFT name of the shared A (after {@code base_model.}). */
  static final String A = "vera_A";

  /** The PEFT name of the shared B (after {@code base_model.}). */
  static final String B = "vera_B";

  /** The PEFT state-dict name of λ_d. */
  static final String LAMBDA_D = "vera_lambda_d";

  /** The PEFT state-dict name of λ_b. */
  static final String LAMBDA_B = "vera_lambda_b";

  /** PEFT's {@code VeraConfig.d_initial}: λ_d's initial value. */
  static final double D_INITIAL = 0.1;

  /** One rank and scaling for the adapter: vera_A and vera_B are shared by every module. */
  @Override
  public boolean perModuleRank() {
    return false;
  }

  @Override
  public boolean trainsA() {
    return false;
  }

  @Override
  public boolean trainsB() {
    return false;
  }

  @Override
  public boolean ownsBranch() {
    return true;
  }

  @Override
  public boolean sharesProjections() {
    return true;
  }

  @Override
  public long[] rankScaleShape(int r) {
    return new long[] {r};
  }

  @Override
  public String rankScaleName() {
    return LAMBDA_D;
  }

  @Override
  public boolean hasOutScale() {
    return true;
  }

  /** VeRA has no alpha: the branch is unscaled. */
  @Override
  public double scaling(int rank, double alpha, boolean rsLora) {
    return 1.0;
  }

  @Override
  public void initShared(Map<String, INDArray> shared, long seed) {
    SplittableRandom rnd = new SplittableRandom(seed);
    kaimingUniform(shared.get(A), rnd);
    kaimingUniform(shared.get(B), rnd);
  }

  /** PEFT's VeRA {@code _kaiming_init}: U(−√3·√2/√fan_in, +…), fan_in = columns. */
  private static void kaimingUniform(INDArray t, SplittableRandom rnd) {
    double bound = Math.sqrt(3.0) * Math.sqrt(2.0) / Math.sqrt(t.columns());
    double[] v = new double[(int) t.length()];
    for (int i = 0; i < v.length; i++) {
      v[i] = (rnd.nextDouble() * 2 - 1) * bound;
    }
    t.assign(Nd4j.createFromArray(v).reshape(t.shape()).castTo(t.dataType()));
  }

  @Override
  public void init(LoraWeights.Module m, double s) {
    m.rankScale().assign(D_INITIAL);
    m.outScale().assign(0);
  }

  @Override
  public void forward(
      LoraWeights.Module m, double s, INDArray x, INDArray xd, INDArray y, Scratch scratch) {
    long n = xd.rows();
    long r = m.a().rows();
    long out = m.b().rows();
    INDArray u = scratch.get("u", n, r); // [N, r]
    Nd4j.gemm(xd, m.a(), u, false, true, 1.0, 0.0); // u = xd A^T
    INDArray ud = scratch.get("ud", n, r).assign(u).muliRowVector(m.rankScale()); // λ_d ⊙ u
    INDArray v = scratch.get("v", n, out); // [N, out]
    Nd4j.gemm(ud, m.b(), v, false, true, 1.0, 0.0); // v = ud B^T
    y.addi(scratch.get("t", n, out).assign(v).muliRowVector(m.outScale())); // y += λ_b ⊙ v
  }

  @Override
  public void backward(
      LoraWeights.Module m,
      double s,
      INDArray x,
      INDArray xd,
      INDArray dy,
      INDArray dx,
      INDArray dxd,
      Scratch scratch) {
    long n = xd.rows();
    long r = m.a().rows();
    long out = m.b().rows();
    INDArray u = scratch.get("u", n, r);
    INDArray v = scratch.get("v", n, out);
    INDArray t = scratch.get("t", n, out).assign(dy).muli(v); // dy ⊙ v
    m.gradOutScale().addi(t.sum(0).reshape(out)); // dλ_b += Σ_n dy ⊙ v
    INDArray dv = t.assign(dy).muliRowVector(m.outScale()); // dv = λ_b ⊙ dy, [N, out]
    INDArray g = scratch.get("g", n, r); // [N, r]
    Nd4j.gemm(dv, m.b(), g, false, false, 1.0, 0.0); // g = dv B = d(ud)
    INDArray gu = scratch.get("ud", n, r).assign(g).muli(u); // g ⊙ u (ud is no longer needed)
    m.gradRankScale().addi(gu.sum(0).reshape(r)); // dλ_d += Σ_n g ⊙ u
    g.muliRowVector(m.rankScale()); // du = λ_d ⊙ g
    Nd4j.gemm(g, m.a(), dxd, false, false, 1.0, 1.0); // dxd += du A
  }

  @Override
  public INDArray merged(LoraWeights.Module m, double s, INDArray w) {
    INDArray b = m.b().castTo(DataType.DOUBLE).mulColumnVector(col(m.outScale())); // λ_b ⊙ B
    INDArray a = m.a().castTo(DataType.DOUBLE).mulColumnVector(col(m.rankScale())); // λ_d ⊙ A
    return b.mmul(a).addi(w); // W + diag(λ_b) B diag(λ_d) A
  }

  private static INDArray col(INDArray v) {
    return v.castTo(DataType.DOUBLE).reshape(-1, 1);
  }

  /** PEFT's VeRA config has no alpha and no rsLoRA: saved (and loaded) with alpha = r. */
  @Override
  public LoraConfig exportConfig(LoraConfig c) {
    return new LoraConfig(
        c.rank(), c.rank(), c.dropout(), c.targets(), false, c.method(), c.selection());
  }

  @Override
  public Map<String, INDArray> peftTensors(LoraWeights w, LoraWeights.Module m) {
    Map<String, INDArray> t = new LinkedHashMap<>();
    t.put(LAMBDA_B, m.outScale());
    t.put(LAMBDA_D, m.rankScale());
    return t;
  }

  @Override
  public void importTensors(LoraWeights w, LoraWeights.Module m, Map<String, INDArray> read) {}
}
