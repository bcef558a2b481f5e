package io.loraspark.train.model;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The GEMMs of a training step that read a frozen weight W [out, in], a projection's or the LM
 * head's: the forward {@code y = x·Wᵀ} and the input gradient {@code dx = dy·W}. The rest of the
 * step (adapters and their gradients, norms, softmax, attention, loss, optimiser) does not go
 * through here and stays fp32. Implementations are shared by every thread using a model; each call
 * writes only its output.
 */
public interface FrozenGemms {
  /** y ← x·Wᵀ for projection {@code p} of {@code layer}. x: [N, in], y: [N, out] */
  void forward(int layer, Projection p, INDArray x, INDArray y);

  /** dx ← dy·W, or dx ← dx + dy·W when {@code accumulate}. dy: [N, out], dx: [N, in] */
  void inputGrad(int layer, Projection p, INDArray dy, INDArray dx, boolean accumulate);

  /** logits ← h·Headᵀ. h: [N, C], logits: [N, V] */
  void head(INDArray h, INDArray logits);

  /** dh ← dLogits·Head. dLogits: [N, V], dh: [N, C] */
  void headInputGrad(INDArray dLogits, INDArray dh);

  /**
   * The GEMMs of attention's scores and values for one new workspace, in this precision: fp32 one
   * BLAS GEMM per matrix unless an implementation says otherwise.
   */
  default BatchedGemms attention() {
    return BatchedGemms.perMatrix();
  }

  /**
   * The float32 GEMMs for the adapters' branches next to these: ND4J's unless an implementation has
   * faster ones (the adapters stay f32 in every precision).
   */
  default Gemm adapters() {
    return Gemm.nd4j();
  }

  /** The precision these GEMMs compute in: {@code fp32} or {@code bf16}. */
  String precision();

  /** The fp32 GEMMs: ND4J (OpenBLAS) over the weights as stored or dequantised. */
  static FrozenGemms fp32(ModelWeights weights) {
    return new FrozenGemms() {
      @Override
      public void forward(int layer, Projection p, INDArray x, INDArray y) {
        Nd4j.gemm(x, weights.linear(layer, p), y, false, true, 1.0, 0.0);
      }

      @Override
      public void inputGrad(int layer, Projection p, INDArray dy, INDArray dx, boolean accumulate) {
        Nd4j.gemm(dy, weights.linear(layer, p), dx, false, false, 1.0, accumulate ? 1.0 : 0.0);
      }

      @Override
      public void head(INDArray h, INDArray logits) {
        Nd4j.gemm(h, weights.lmHead(), logits, false, true, 1.0, 0.0);
      }

      @Override
      public void headInputGrad(INDArray dLogits, INDArray dh) {
        Nd4j.gemm(dLogits, weights.lmHead(), dh, false, false, 1.0, 0.0);
      }

      @Override
      public String precision() {
        return "fp32";
      }
    };
  }
}
