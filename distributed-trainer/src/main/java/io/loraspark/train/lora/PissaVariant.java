package io.loraspark.train.lora;

import io.loraspark.train.model.ModelConfig;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;
import org.nd4j.linalg.ops.transforms.Transforms;

/**
 * PiSSA (Meng et al. 2024, "PiSSA: Principal Singular Values and Singular Vectors Adaptation of
 * Large Language Models", arXiv:2404.02948): A and B start as the top-r singular triplets of W and
 * train on the residual. Followed: PEFT's {@code pissa_init} (peft/tuners/lora/layer.py), which
 * with {@code W = U S Vᵀ} sets {@code A = diag(√(S_r/s)) V_rᵀ} [r, in], {@code B = U_r
 * diag(√(S_r/s))} [out, r], so {@code s·B·A = U_r S_r V_rᵀ}, and replaces the base weight by {@code
 * W − s·B·A}.
 *
 * <p>The base here is shared by every adapter and never modified, so each module keeps the frozen
 * initial factors A₀ = A, B₀ = B and its branch subtracts their product: the layer computes {@code
 * W x − s·B₀·A₀·x + s·B·A·dropout(x)}, which is PEFT's {@code W_res x + s·B·A·dropout(x)} (equal to
 * W x at init). It saves as PEFT's conversion for the unmodified base ({@code
 * save_pretrained(path_initial_model_for_weight_conversion=...)} in peft/peft_model.py and {@code
 * subtract_mutated_init} in peft/tuners/lora/model.py): a plain LoRA of rank 2r with {@code A' =
 * [A; A₀]}, {@code B' = [B, −B₀]}, and lora_alpha doubled (×√2 with rsLoRA) so the scaling stays s,
 * i.e. {@code s·B'·A' = s·B·A − s·B₀·A₀}; PEFT, vLLM and {@code lora-pipeline merge} use it on the
 * original checkpoint like any LoRA adapter.
 */
final class PissaVariant implements LoraVariant {

  /** One rank and scaling for the adapter: its export doubles every module's rank. */
  @Override
  public boolean perModuleRank() {
    return false;
  }

  @Override
  public boolean needsBase() {
    return true;
  }

  /** The branch re-bases W; the saved rank-2r form is plain LoRA. */
  @Override
  public boolean additive() {
    return false;
  }

  @Override
  public ModuleState newState(ModuleState.Shape shape) {
    DataType dt = shape.dt();
    return new PissaState(
        shape.base().get(),
        Nd4j.create(dt, shape.r(), shape.in()),
        Nd4j.create(dt, shape.out(), shape.r()));
  }

  @Override
  public boolean ownsBranch() {
    return true;
  }

  @Override
  public void init(LoraWeights.Module m, double s) {
    PissaState state = m.state(PissaState.class);
    int r = (int) m.a().rows();
    INDArray w = state.base().castTo(DataType.DOUBLE).dup('c'); // [out, in]
    ModelConfig.require(
        r <= Math.min(w.rows(), w.columns()),
        "pissa rank %d exceeds min(out, in) = %d of %s",
        r,
        Math.min(w.rows(), w.columns()),
        m.name());
    ReplicaAggregation.Svd svd = ReplicaAggregation.svd(w); // u [out, out], vt [in, in]
    INDArray roots = // [r]: √(S_r / s)
        Transforms.sqrt(svd.sigma().get(NDArrayIndex.interval(0, r)).div(s), false);
    INDArray b = svd.u().get(NDArrayIndex.all(), NDArrayIndex.interval(0, r)).mulRowVector(roots);
    INDArray a =
        svd.vt()
            .get(NDArrayIndex.interval(0, r), NDArrayIndex.all())
            .mulColumnVector(roots.reshape(r, 1));
    m.a().assign(a.castTo(m.a().dataType()));
    m.b().assign(b.castTo(m.b().dataType()));
    state.a0().assign(m.a());
    state.b0().assign(m.b());
  }

  @Override
  public void forward(
      LoraWeights.Module m, double s, INDArray x, INDArray xd, INDArray y, Scratch scratch) {
    PissaState init = m.state(PissaState.class);
    long n = x.rows();
    long r = m.a().rows();
    INDArray u = scratch.get("u", n, r); // [N, r]
    Nd4j.gemm(xd, m.a(), u, false, true, 1.0, 0.0); // u = xd A^T
    Nd4j.gemm(u, m.b(), y, false, true, s, 1.0); // y += s u B^T
    INDArray u0 = scratch.get("u0", n, r); // [N, r]
    Nd4j.gemm(x, init.a0(), u0, false, true, 1.0, 0.0); // u0 = x A0^T
    Nd4j.gemm(u0, init.b0(), y, false, true, -s, 1.0); // y -= s u0 B0^T
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
    PissaState init = m.state(PissaState.class);
    long n = x.rows();
    long r = m.a().rows();
    INDArray u = scratch.get("u", n, r);
    Nd4j.gemm(dy, u, m.gradB(), true, false, s, 1.0); // dB += s dy^T u
    INDArray g = scratch.get("g", n, r); // [N, r]
    Nd4j.gemm(dy, m.b(), g, false, false, 1.0, 0.0); // g = dy B
    Nd4j.gemm(g, xd, m.gradA(), true, false, s, 1.0); // dA += s g^T xd
    Nd4j.gemm(g, m.a(), dxd, false, false, s, 1.0); // dxd += s g A
    INDArray g0 = scratch.get("g0", n, r); // [N, r]
    Nd4j.gemm(dy, init.b0(), g0, false, false, 1.0, 0.0); // g0 = dy B0
    Nd4j.gemm(g0, init.a0(), dx, false, false, -s, 1.0); // dx -= s g0 A0
  }

  @Override
  public INDArray merged(LoraWeights.Module m, double s, INDArray w) {
    PissaState init = m.state(PissaState.class);
    INDArray initial = init.b0().castTo(DataType.DOUBLE).mmul(init.a0().castTo(DataType.DOUBLE));
    INDArray trained = m.b().castTo(DataType.DOUBLE).mmul(m.a().castTo(DataType.DOUBLE));
    return trained.muli(s).addi(w).subi(initial.muli(s)); // W + s B A - s B0 A0
  }

  @Override
  public LoraConfig exportConfig(LoraConfig c) {
    double alpha = c.rsLora() ? c.alpha() * Math.sqrt(2) : 2 * c.alpha();
    return new LoraConfig(
        2 * c.rank(), alpha, c.dropout(), c.targets(), c.rsLora(), LoraMethod.LORA, c.selection());
  }

  @Override
  public INDArray[] exportFactors(LoraWeights.Module m) {
    PissaState init = m.state(PissaState.class);
    return new INDArray[] {Nd4j.vstack(m.a(), init.a0()), Nd4j.hstack(m.b(), init.b0().neg())};
  }

  @Override
  public void importFactors(LoraWeights.Module m, INDArray[] saved) {
    PissaState init = m.state(PissaState.class);
    long r = m.a().rows();
    m.a().assign(saved[0].get(NDArrayIndex.interval(0, r), NDArrayIndex.all()));
    init.a0().assign(saved[0].get(NDArrayIndex.interval(r, 2 * r), NDArrayIndex.all()));
    m.b().assign(saved[1].get(NDArrayIndex.all(), NDArrayIndex.interval(0, r)));
    init.b0().assign(saved[1].get(NDArrayIndex.all(), NDArrayIndex.interval(r, 2 * r)).neg());
  }
}
