package io.loraspark.prep.shard;

import static org.assertj.core.api.Assertions.assertThat;

import io.loraspark.prep.schema.Conversation;
import org.junit.jupiter.api.Test;

class ExampleKeysTest {

  @Test
  void splitIsStableAndNearTheFraction() {
    int eval = 0;
    int[] shards = new int[4];
    for (int i = 0; i < 20_000; i++) {
      String id = Conversation.single("q" + i, "", "a").exampleId();
      ExampleKeys k = ExampleKeys.of(42, id, 0.1, 4);
      assertThat(ExampleKeys.of(42, id, 0.1, 4)).isEqualTo(k);
      eval += k.eval() ? 1 : 0;
      shards[k.shard()]++;
    }
    assertThat(eval / 20_000.0).isBetween(0.09, 0.11);
    for (int s : shards) {
      assertThat(s).as("balanced shards").isBetween(4_500, 5_500);
    }
    assertThat(ExampleKeys.of(42, "x", 0.0, 1).eval()).as("fraction 0").isFalse();
  }

  @Test
  void goldenKeysPinTheHashDefinition() {
    // python: h = sha256(struct.pack('>q', 42) + b'abc').digest(); a, b, c = unpack('>qqq', h[:24])
    // u = (a mod 2^64 >> 11) / 2^53 = 0.8558..., shard = b mod 8 = 5, order = c
    assertThat(ExampleKeys.of(42, "abc", 0.85, 8))
        .isEqualTo(new ExampleKeys(false, 5, 7772759468223273205L));
    assertThat(ExampleKeys.of(42, "abc", 0.86, 8).eval()).isTrue();
    assertThat(ExampleKeys.of(43, "abc", 0.5, 8)).isNotEqualTo(ExampleKeys.of(42, "abc", 0.5, 8));
  }
}
