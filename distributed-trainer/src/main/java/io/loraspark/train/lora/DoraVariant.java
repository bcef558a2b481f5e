package io.loraspark.train.lora;

import java.util.Map;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * DoRA (Liu et al. 2024, "DoRA: Weight-Decomposed Low-Rank Adaptation", arXiv:2402.09353): the
 * adapted weight is a trained magnitude m [out] times the row-normalised direction, {@code W' = m ⊙
 * (W + s·B·A) / ‖W + s·B·A‖}, with the norm over the input dimension of each output row and, as in
 * §4.3 of the paper, treated as a constant in backward.
 *
 * <p>Followed: PEFT's {@code DoraLinearLayer} (peft/tuners/lora/dora.py). Its branch output, added
 * to the base layer's {@code W x + b}, is {@code (m/‖·‖ − 1) ⊙ W xd + (m/‖·‖) ⊙ s·B·A·xd} where
 * {@code xd} is the dropped-out input (PEFT recomputes {@code W xd} rather than reuse {@code W x}
 * so that dropout applies to both terms); this class computes the same as {@code (m/‖·‖) ⊙ v − W
 * xd} with {@code v = W xd + s·B·A·xd}. The magnitude starts at {@code ‖W + s·B·A‖} (= {@code ‖W‖}
 * rows, since B starts at zero), and PEFT saves it as {@code <module>.lora_magnitude_vector}.
 */
final class DoraVariant implements LoraVariant {

  @Override
  public boolean needsBase() {
    return true;
  }

  /** W' = m ⊙ (W + s·B·A) / ‖W + s·B·A‖ rescales W. */
  @Override
  public boolean additive() {
    return false;
  }

  @Override
  public ModuleState newState(ModuleState.Shape shape) {
    return new DoraState(
        shape.base().get(),
        Nd4j.create(shape.dt(), shape.out()),
        Nd4j.create(shape.dt(), shape.out()));
  }

  @Override
  public boolean ownsBranch() {
    return true;
  }

  @Override
  public void init(LoraWeights.Module m, double s) {
    m.state(DoraState.class).magnitude().assign(rowNorms(m, s));
  }

  /** ‖W + s·B·A‖ of every output row, over the input dimension: a new array [out]. */
  static INDArray rowNorms(LoraWeights.Module m, double s) {
    INDArray adapted = m.state(DoraState.class).base().dup(); // [out, in]
    Nd4j.gemm(m.b(), m.a(), adapted, false, false, s, 1.0); // W + s B A
    return adapted.norm2(1);
  }

  @Override
  public void forward(
      LoraWeights.Module m, double s, INDArray x, INDArray xd, INDArray y, Scratch scratch) {
    DoraState d = m.state(DoraState.class);
    long n = xd.rows();
    long out = m.b().rows();
    INDArray norm = scratch.get("norm", 1, out).assign(rowNorms(m, s).reshape(1, out)); // detached
    INDArray scale = scratch.get("scale", 1, out).assign(d.magnitude().reshape(1, out)).divi(norm);
    INDArray u = scratch.get("u", n, m.a().rows()); // [N, r]
    Nd4j.gemm(xd, m.a(), u, false, true, 1.0, 0.0); // u = xd A^T
    INDArray wx = scratch.get("wx", n, out); // [N, out]
    Nd4j.gemm(xd, d.base(), wx, false, true, 1.0, 0.0); // wx = xd W^T
    INDArray v = scratch.get("v", n, out).assign(wx); // [N, out]
    Nd4j.gemm(u, m.b(), v, false, true, s, 1.0); // v = W xd + s B A xd
    INDArray t = scratch.get("t", n, out).assign(v).muliRowVector(scale); // scale ⊙ v
    y.addi(t.subi(wx)); // y += scale ⊙ v - W xd
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
    DoraState d = m.state(DoraState.class);
    long n = xd.rows();
    long out = m.b().rows();
    INDArray norm = scratch.get("norm", 1, out);
    INDArray scale = scratch.get("scale", 1, out);
    INDArray u = scratch.get("u", n, m.a().rows());
    INDArray v = scratch.get("v", n, out);
    INDArray t = scratch.get("t", n, out).assign(dy).muli(v); // dy ⊙ v
    d.gradMagnitude().addi(t.sum(0).reshape(out).divi(norm.reshape(out))); // dm += Σ dy⊙v / ‖·‖
    INDArray dv = scratch.get("dv", n, out).assign(dy).muliRowVector(scale); // dv = scale ⊙ dy
    Nd4j.gemm(dv, u, m.gradB(), true, false, s, 1.0); // dB += s dv^T u
    INDArray g = scratch.get("g", n, m.a().rows()); // [N, r]
    Nd4j.gemm(dv, m.b(), g, false, false, 1.0, 0.0); // g = dv B
    Nd4j.gemm(g, xd, m.gradA(), true, false, s, 1.0); // dA += s g^T xd
    Nd4j.gemm(g, m.a(), dxd, false, false, s, 1.0); // dxd += s g A
    dv.subi(dy); // d(W xd) = (scale - 1) ⊙ dy
    Nd4j.gemm(dv, d.base(), dxd, false, false, 1.0, 1.0); // dxd += d(W xd) W
  }

  @Override
  public INDArray merged(LoraWeights.Module m, double s, INDArray w) {
    INDArray adapted = LoraVariant.super.merged(m, s, w); // W + s B A, [out, in]
    INDArray magnitude = m.state(DoraState.class).magnitude();
    INDArray factor = magnitude.castTo(DataType.DOUBLE).dup().reshape(-1, 1); // [out, 1]
    factor.divi(adapted.norm2(1).reshape(-1, 1)); // m / ‖W + s B A‖
    return adapted.muliColumnVector(factor);
  }

  /** A and B as plain LoRA saves them, then {@code lora_magnitude_vector}. */
  @Override
  public Map<String, INDArray> peftTensors(LoraWeights w, LoraWeights.Module m) {
    Map<String, INDArray> t = LoraVariant.super.peftTensors(w, m);
    t.put(DoraState.MAGNITUDE, m.state(DoraState.class).magnitude());
    return t;
  }
}
