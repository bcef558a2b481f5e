package io.loraspark.train.optim;

import static io.loraspark.train.model.ModelConfig.require;

/**
 * Hyper-parameters of {@link AdamW} (Loshchilov &amp; Hutter 2019, arXiv:1711.05101), with
 * PyTorch's {@code torch.optim.AdamW} and Hugging Face's {@code TrainingArguments} defaults where
 * {@link #of(double)} fills them in.
 *
 * @param lr the peak (base) learning rate, &gt; 0; a schedule scales it per step
 * @param beta1 decay of the first-moment average, in [0, 1)
 * @param beta2 decay of the second-moment average, in [0, 1)
 * @param eps added to the bias-corrected root second moment, &gt; 0
 * @param weightDecay decoupled weight-decay coefficient, &gt;= 0
 * @param lrRatio LoRA+ ratio η_B / η_A (Hayou et al. 2024, arXiv:2402.12354), &gt; 0; 1 is plain
 *     LoRA
 */
public record AdamWConfig(
    double lr, double beta1, double beta2, double eps, double weightDecay, double lrRatio) {

  public AdamWConfig {
    require(Double.isFinite(lr) && lr > 0, "lr must be > 0 but was %s", lr);
    require(beta1 >= 0 && beta1 < 1, "beta1 must be in [0, 1) but was %s", beta1);
    require(beta2 >= 0 && beta2 < 1, "beta2 must be in [0, 1) but was %s", beta2);
    require(Double.isFinite(eps) && eps > 0, "eps must be > 0 but was %s", eps);
    require(
        Double.isFinite(weightDecay) && weightDecay >= 0,
        "weight_decay must be >= 0 but was %s",
        weightDecay);
    require(Double.isFinite(lrRatio) && lrRatio > 0, "lr_ratio must be > 0 but was %s", lrRatio);
  }

  /**
   * {@code lr} with the defaults of PyTorch / Hugging Face: betas (0.9, 0.999), eps 1e-8, weight
   * decay 0 (Hugging Face's {@code TrainingArguments} default) and LoRA+ ratio 1 (plain LoRA).
   */
  public static AdamWConfig of(double lr) {
    return new AdamWConfig(lr, 0.9, 0.999, 1e-8, 0.0, 1.0);
  }

  /** A copy with the given learning rate. */
  public AdamWConfig withLr(double newLr) {
    return new AdamWConfig(newLr, beta1, beta2, eps, weightDecay, lrRatio);
  }

  /** A copy with the given moment decays. */
  public AdamWConfig withBetas(double newBeta1, double newBeta2) {
    return new AdamWConfig(lr, newBeta1, newBeta2, eps, weightDecay, lrRatio);
  }

  /** A copy with the given epsilon. */
  public AdamWConfig withEps(double newEps) {
    return new AdamWConfig(lr, beta1, beta2, newEps, weightDecay, lrRatio);
  }

  /** A copy with the given decoupled weight decay. */
  public AdamWConfig withWeightDecay(double newWeightDecay) {
    return new AdamWConfig(lr, beta1, beta2, eps, newWeightDecay, lrRatio);
  }

  /** A copy with the given LoRA+ ratio η_B / η_A. */
  public AdamWConfig withLrRatio(double newLrRatio) {
    return new AdamWConfig(lr, beta1, beta2, eps, weightDecay, newLrRatio);
  }
}
