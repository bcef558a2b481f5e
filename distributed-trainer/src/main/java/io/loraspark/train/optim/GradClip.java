package io.loraspark.train.optim;

import static io.loraspark.train.model.ModelConfig.require;

import java.util.List;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Gradient clipping by global L2 norm, as {@code torch.nn.utils.clip_grad_norm_} with {@code
 * norm_type=2} (Pascanu et al. 2013, arXiv:1211.5063).
 */
public final class GradClip {

  /** Added to the norm before dividing, as in PyTorch. */
  public static final double EPS = 1e-6;

  private GradClip() {}

  /**
   * sqrt(Σ g²) over every element of every gradient, accumulated in double whatever the arrays'
   * dtype; 0 for an empty list. NaN or infinite when some element is.
   */
  public static double globalNorm(List<INDArray> grads) {
    require(grads != null, "grads must not be null");
    double sumSq = 0;
    for (INDArray g : grads) {
      sumSq += OptimizerKernels.of(g).sumSquares(g); // Σ over tensors of their Σ g²
    }
    return Math.sqrt(sumSq);
  }

  /**
   * Scales every gradient in place by {@code maxNorm / (norm + 1e-6)} when that factor is below 1
   * (that is, when the global norm exceeds {@code maxNorm}, up to the 1e-6), exactly PyTorch's
   * clamped clip coefficient; otherwise leaves them untouched.
   *
   * <p>When the norm is NaN or infinite the gradients are left untouched (PyTorch would scale them
   * by NaN or 0); the returned norm lets the caller skip the step.
   *
   * @param maxNorm the largest allowed global norm; &lt;= 0 disables clipping
   * @return the global norm before clipping
   */
  public static double clipByGlobalNorm(List<INDArray> grads, double maxNorm) {
    require(!Double.isNaN(maxNorm), "max_grad_norm must be a number but was NaN");
    double norm = globalNorm(grads);
    if (maxNorm <= 0 || !Double.isFinite(norm)) {
      return norm;
    }
    double coef = maxNorm / (norm + EPS); // clip_coef = max_norm / (total_norm + 1e-6)
    if (coef < 1) { // PyTorch clamps the coefficient to at most 1
      for (INDArray g : grads) {
        OptimizerKernels.of(g).scale(g, coef); // g *= clip_coef, in place
      }
    }
    return norm;
  }
}
