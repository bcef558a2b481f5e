package io.loraspark.prep.shard;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class PackerTest {
  static final int X = ShardSchema.IGNORE_INDEX;

  static Packer.Member member(String id, String split, int n) {
    int[] ids = new int[n];
    int[] labels = new int[n];
    for (int i = 0; i < n; i++) {
      ids[i] = 10 + i;
      labels[i] = i < n / 2 ? X : ids[i];
    }
    ids[0] = 1;
    return new Packer.Member(id, split, ids, labels, id + ".jsonl:1");
  }

  @Test
  void packsGreedilyInOrderWithinOneSplit() {
    Packer p = new Packer(10, true);
    List<ShardRow> rows = new ArrayList<>();
    rows.addAll(p.add(member("a", "train", 4)));
    rows.addAll(p.add(member("b", "train", 6)));
    rows.addAll(p.add(member("c", "train", 3)));
    rows.addAll(p.add(member("d", "eval", 2)));
    rows.addAll(p.finish());
    assertThat(rows).hasSize(3);
    ShardRow ab = rows.get(0);
    assertThat(ab.segmentIds()).containsExactly(1, 1, 1, 1, 2, 2, 2, 2, 2, 2);
    assertThat(ab.numExamples()).isEqualTo(2);
    assertThat(ab.labels()[4]).as("first label of segment 2").isEqualTo(X);
    assertThat(ab.exampleId()).matches("[0-9a-f]{64}").isNotEqualTo("a");
    assertThat(ab.source()).isEqualTo("a.jsonl:1");
    assertThat(ab.numLabelTokens()).isEqualTo(2 + 3);
    assertThat(rows.get(1).exampleId()).as("a row of one keeps the example id").isEqualTo("c");
    assertThat(rows.get(2).split()).as("splits are never mixed").isEqualTo("eval");
  }

  @Test
  void oneRowPerExampleWithoutPacking() {
    Packer p = new Packer(10, false);
    assertThat(p.add(member("a", "train", 4)))
        .singleElement()
        .satisfies(
            r -> {
              assertThat(r.segmentIds()).containsOnly(1);
              assertThat(r.numExamples()).isEqualTo(1);
              assertThat(r.toRow().size()).isEqualTo(ShardSchema.SCHEMA.size());
            });
    assertThat(p.finish()).isEmpty();
  }
}
