package io.loraspark.train.loop;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import io.loraspark.train.model.Adapters;
import io.loraspark.train.model.CheckpointLoader;
import io.loraspark.train.model.LossStats;
import io.loraspark.train.model.TestModels;
import io.loraspark.train.model.TokenRow;
import io.loraspark.train.model.Transformer;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;

/** A row packed from several examples scores exactly like the examples as separate rows. */
class PackedRowsTest {
  @TempDir Path tmp;

  @Test
  void packedRowLossEqualsSeparateRowsLoss() {
    Path dir =
        TestModels.writeRandom(
            tmp.resolve("m"), TestModels.config("LlamaForCausalLM", true, true), 3);
    Transformer model = new Transformer(CheckpointLoader.load(dir, DataType.DOUBLE));
    TokenRow e1 =
        new TokenRow(new int[] {1, 5, 9, 2, 7, 3, 4}, new int[] {-100, -100, 9, 2, 7, 3, 4});
    TokenRow e2 =
        new TokenRow(
            new int[] {1, 8, 8, 6, 30, 12, 2, 5, 11},
            new int[] {-100, -100, -100, 6, 30, 12, 2, 5, 11});
    TokenRow e3 = new TokenRow(new int[] {1, 20, 21}, new int[] {1, 20, 21});
    TokenRow packed =
        new TokenRow(
            concat(e1.inputIds(), e2.inputIds(), e3.inputIds()),
            concat(e1.labels(), e2.labels(), e3.labels()),
            concat(fill(7, 1), fill(9, 2), fill(3, 3)));
    assertThat(packed.examples()).isEqualTo(3);

    LossStats separate = Evaluator.score(model, Adapters.NONE, List.of(e1, e2, e3), 3, 0);
    LossStats together = Evaluator.score(model, Adapters.NONE, List.of(packed), 1, 0);
    assertThat(together.totalCount()).isEqualTo(separate.totalCount()).isEqualTo(5 + 6 + 2);
    assertThat(together.totalNll()).isCloseTo(separate.totalNll(), within(1e-9));
  }

  @Test
  void segmentIdsMustCountUpFromOne() {
    assertThatThrownBy(() -> new TokenRow(new int[] {1, 2}, new int[] {1, 2}, new int[] {1, 3}))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("position 1");
    assertThatThrownBy(() -> new TokenRow(new int[] {1, 2}, new int[] {1, 2}, new int[] {0, 1}))
        .hasMessageContaining("start at 1");
  }

  static int[] fill(int n, int v) {
    int[] a = new int[n];
    java.util.Arrays.fill(a, v);
    return a;
  }

  static int[] concat(int[]... parts) {
    return java.util.Arrays.stream(parts).flatMapToInt(java.util.Arrays::stream).toArray();
  }
}
