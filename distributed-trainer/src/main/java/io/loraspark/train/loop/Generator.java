package io.loraspark.train.loop;

import io.loraspark.train.model.Adapters;
import io.loraspark.train.model.Batch;
import io.loraspark.train.model.ModelConfig;
import io.loraspark.train.model.Transformer;
import io.loraspark.train.model.Workspace;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Greedy decoding: each new token is the argmax of the next-token logits. Without a KV cache, each
 * step re-runs the forward pass over one fixed-size workspace (causal attention makes the padded
 * tail invisible), which is cheap for the small models this runs on and keeps a single code path.
 */
public final class Generator {
  private Generator() {}

  /**
   * Continues {@code promptIds} greedily.
   *
   * @param maxNewTokens the most tokens to generate
   * @param stopIds ids that end generation (generated but not continued past), e.g. EOS
   * @return the generated ids (without the prompt)
   */
  public static int[] greedy(
      Transformer model,
      Adapters adapters,
      int[] promptIds,
      int maxNewTokens,
      Set<Integer> stopIds) {
    ModelConfig c = model.config();
    ModelConfig.require(promptIds.length > 0, "the prompt must have at least one token");
    ModelConfig.require(maxNewTokens >= 0, "max-new-tokens must be >= 0 but was %d", maxNewTokens);
    int total = Math.min(c.maxPositions(), promptIds.length + maxNewTokens);
    ModelConfig.require(
        promptIds.length <= c.maxPositions(),
        "the prompt has %d tokens but max_position_embeddings is %d",
        promptIds.length,
        c.maxPositions());
    int[] seq = Arrays.copyOf(promptIds, total);
    int len = promptIds.length;
    Workspace ws = model.newWorkspace(1, total);
    while (len < total) {
      Batch batch = Batch.padded(List.of(Arrays.copyOf(seq, len)), null, 0, new int[1], 1, total);
      model.forward(batch, adapters, ws);
      INDArray row = ws.logits().getRow(len - 1);
      int next = row.argMax().getInt(0);
      seq[len++] = next;
      if (stopIds.contains(next)) {
        break;
      }
    }
    return Arrays.copyOfRange(seq, promptIds.length, len);
  }
}
