package io.loraspark.train.lora;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

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
  public ModuleState newState(ModuleState.Shape shape) {
    DataType dt = shape.dt();
    return new VeraState(
        Nd4j.create(dt, shape.r()),
        Nd4j.create(dt, shape.r()),
        Nd4j.create(dt, shape.out()),
        Nd4j.create(dt, shape.out()));
  }

  @Override
  public String peftType() {
    return PeftAdapterConfig.VERA_TYPE;
  }

  /** VeRA has no alpha: the branch is unscaled. */
  @Override
  public double scaling(int rank, double alpha, boolean rsLora) {
    return 1.0;
  }

  /** vera_A [r, in_max] then vera_B [out_max, r], drawn in that order from {@code seed}. */
  @Override
  public Map<String, INDArray> newShared(int r, int inMax, int outMax, DataType dt, Long seed) {
    Map<String, INDArray> shared = new LinkedHashMap<>();
    shared.put(A, Nd4j.create(dt, r, inMax));
    shared.put(B, Nd4j.create(dt, outMax, r));
    if (seed != null) {
      SplittableRandom rnd = new SplittableRandom(seed);
      kaimingUniform(shared.get(A), rnd);
      kaimingUniform(shared.get(B), rnd);
    }
    return shared;
  }

  /** The module's slices vera_A[:, :in] and vera_B[:out, :], views of the shared pair. */
  @Override
  public INDArray[] newFactors(Map<String, INDArray> shared, int r, int in, int out, DataType dt) {
    return new INDArray[] {
      shared.get(A).get(NDArrayIndex.all(), NDArrayIndex.interval(0, in)),
      shared.get(B).get(NDArrayIndex.interval(0, out), NDArrayIndex.all())
    };
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
    VeraState v = m.state(VeraState.class);
    v.lambdaD().assign(D_INITIAL);
    v.lambdaB().assign(0);
  }

  @Override
  public void forward(
      LoraWeights.Module m, double s, INDArray x, INDArray xd, INDArray y, Scratch scratch) {
    VeraState v = m.state(VeraState.class);
    long n = xd.rows();
    long r = m.a().rows();
    long out = m.b().rows();
    INDArray u = scratch.get("u", n, r); // [N, r]
    Nd4j.gemm(xd, m.a(), u, false, true, 1.0, 0.0); // u = xd A^T
    INDArray ud = scratch.get("ud", n, r).assign(u).muliRowVector(v.lambdaD()); // λ_d ⊙ u
    INDArray bu = scratch.get("v", n, out); // [N, out]
    Nd4j.gemm(ud, m.b(), bu, false, true, 1.0, 0.0); // bu = ud B^T
    y.addi(scratch.get("t", n, out).assign(bu).muliRowVector(v.lambdaB())); // y += λ_b ⊙ bu
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
    VeraState vs = m.state(VeraState.class);
    long n = xd.rows();
    long r = m.a().rows();
    long out = m.b().rows();
    INDArray u = scratch.get("u", n, r);
    INDArray v = scratch.get("v", n, out);
    INDArray t = scratch.get("t", n, out).assign(dy).muli(v); // dy ⊙ v
    vs.gradLambdaB().addi(t.sum(0).reshape(out)); // dλ_b += Σ_n dy ⊙ v
    INDArray dv = t.assign(dy).muliRowVector(vs.lambdaB()); // dv = λ_b ⊙ dy, [N, out]
    INDArray g = scratch.get("g", n, r); // [N, r]
    Nd4j.gemm(dv, m.b(), g, false, false, 1.0, 0.0); // g = dv B = d(ud)
    INDArray gu = scratch.get("ud", n, r).assign(g).muli(u); // g ⊙ u (ud is no longer needed)
    vs.gradLambdaD().addi(gu.sum(0).reshape(r)); // dλ_d += Σ_n g ⊙ u
    g.muliRowVector(vs.lambdaD()); // du = λ_d ⊙ g
    Nd4j.gemm(g, m.a(), dxd, false, false, 1.0, 1.0); // dxd += du A
  }

  /**
   * {@code A' = Λ_d A}, {@code B' = Λ_b B}, unscaled (s' = 1); merged as {@code W + diag(λ_b) B
   * diag(λ_d) A}.
   */
  @Override
  public LoraForm.Factors loraFactors(LoraWeights.Module m, double s) {
    VeraState v = m.state(VeraState.class);
    INDArray a = m.a().castTo(DataType.DOUBLE).mulColumnVector(col(v.lambdaD())); // λ_d ⊙ A
    INDArray b = m.b().castTo(DataType.DOUBLE).mulColumnVector(col(v.lambdaB())); // λ_b ⊙ B
    return new LoraForm.Factors(m.layer(), m.proj(), a, b, 1);
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
    VeraState v = m.state(VeraState.class);
    Map<String, INDArray> t = new LinkedHashMap<>();
    t.put(VeraState.LAMBDA_B, v.lambdaB());
    t.put(VeraState.LAMBDA_D, v.lambdaD());
    return t;
  }

  @Override
  public void importTensors(LoraWeights w, LoraWeights.Module m, Map<String, INDArray> read) {}
}
