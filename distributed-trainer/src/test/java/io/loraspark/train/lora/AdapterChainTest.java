package io.loraspark.train.lora;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.loraspark.train.loop.AdapterKey;
import io.loraspark.train.loop.AdapterSpec;
import io.loraspark.train.loop.TrainConfig;
import io.loraspark.train.model.ModelConfig;
import io.loraspark.train.model.Projection;
import io.loraspark.train.optim.LrSchedule;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * A child's parent chain: content hashes tie it to the parents' bytes, a changed parent, a cycle
 * and a chain deeper than {@link AdapterChain#MAX_DEPTH} are refused with one line, and the
 * parent's hash is a field of the child's checkpoint key.
 */
class AdapterChainTest {
  static final ModelConfig MODEL = LoraTestModels.smallLlama();

  static Path adapter(Path dir, long seed) {
    LoraConfig c = new LoraConfig(2, 4, 0, List.of(Projection.Q, Projection.V), false);
    PeftAdapter.save(dir, LoraWeights.init(MODEL, c, seed, DataType.FLOAT), null);
    return dir;
  }

  /** root ← mid ← leaf, each recording its parent's hash as {@code train --parent} does. */
  static Path[] chain(Path tmp) {
    Path root = adapter(tmp.resolve("root"), 1);
    Path mid = adapter(tmp.resolve("mid"), 2);
    AdapterChain.record(mid, AdapterParent.of(root.toString()));
    Path leaf = adapter(tmp.resolve("leaf"), 3);
    AdapterChain.record(leaf, AdapterParent.of(mid.toString()));
    return new Path[] {root, mid, leaf};
  }

  @Test
  void aChildsChainIsItsRecordedParentsRootFirst(@TempDir Path tmp) {
    Path[] c = chain(tmp);
    AdapterChain up = AdapterChain.of(c[2].toString());
    assertThat(up.nodes())
        .extracting(AdapterParent::location)
        .containsExactly(c[0].toString(), c[1].toString());
    assertThat(AdapterChain.of(c[0].toString())).isEqualTo(AdapterChain.NONE);
    assertThat(AdapterChain.above(AdapterParent.of(c[1].toString())).depth()).isEqualTo(2);
  }

  @Test
  void theContentHashCoversTheWeightsAndTheParentRecord(@TempDir Path tmp) throws IOException {
    Path[] c = chain(tmp);
    String mid = AdapterParent.contentHash(c[1].toString());
    Files.copy(c[1], tmp.resolve("copy")); // hashing reads only the files, not the name
    for (String f : AdapterParent.HASHED_FILES) {
      if (Files.exists(c[1].resolve(f))) {
        Files.copy(c[1].resolve(f), tmp.resolve("copy").resolve(f));
      }
    }
    assertThat(AdapterParent.contentHash(tmp.resolve("copy").toString())).isEqualTo(mid);
    AdapterChain.record(c[1], AdapterParent.of(c[2].toString().replace("leaf", "root")));
    assertThat(AdapterParent.contentHash(c[1].toString())).isEqualTo(mid); // same record, same hash
    adapter(c[0], 9);
    AdapterChain.record(c[1], AdapterParent.of(c[0].toString()));
    assertThat(AdapterParent.contentHash(c[1].toString()))
        .as("a new grandparent changes the parent's hash through its record")
        .isNotEqualTo(mid);
  }

  @Test
  void aChildWhoseParentChangedIsRefusedNamingBoth(@TempDir Path tmp) {
    Path[] c = chain(tmp);
    adapter(c[1], 7); // the parent retrained in place
    AdapterChain.record(c[1], AdapterParent.of(c[0].toString()));
    assertThatThrownBy(() -> AdapterChain.of(c[2].toString()))
        .isInstanceOf(AdapterChain.ParentChangedException.class)
        .hasMessageContaining(c[2].toString())
        .hasMessageContaining(c[1].toString())
        .hasMessageContaining("now holds other content")
        .hasMessageNotContaining("\n");
  }

  @Test
  void aGrandparentThatChangedIsRefusedToo(@TempDir Path tmp) {
    Path[] c = chain(tmp);
    adapter(c[0], 8);
    assertThatThrownBy(() -> AdapterChain.of(c[2].toString()))
        .isInstanceOf(AdapterChain.ParentChangedException.class)
        .hasMessageContaining("adapter " + c[1] + " was trained on parent " + c[0]);
  }

  @Test
  void aCycleIsRefusedInOneLine(@TempDir Path tmp) throws IOException {
    Path a = adapter(tmp.resolve("a"), 1);
    Path b = adapter(tmp.resolve("b"), 2);
    AdapterChain.record(b, AdapterParent.of(a.toString()));
    // a names b: b's hash is taken after, so b's record of a is stale, but the cycle is seen first
    AdapterChain.record(a, AdapterParent.of(b.toString()));
    assertThatThrownBy(() -> AdapterChain.of(b.toString()))
        .hasMessageStartingWith("adapter chain has a cycle: ")
        .hasMessageNotContaining("\n");
    assertThatThrownBy(() -> AdapterChain.above(AdapterParent.of(a.toString())))
        .hasMessageStartingWith("adapter chain has a cycle: ");
    Path self = adapter(tmp.resolve("self"), 3);
    AdapterChain.record(self, new AdapterParent(self.toString(), "0".repeat(64)));
    assertThatThrownBy(() -> AdapterChain.of(self.toString()))
        .hasMessage("adapter chain has a cycle: " + self + " names itself as its parent");
  }

  @Test
  void aChainDeeperThanTheLimitIsRefused(@TempDir Path tmp) {
    Path below = adapter(tmp.resolve("n0"), 0);
    for (int i = 1; i <= AdapterChain.MAX_DEPTH; i++) {
      Path d = adapter(tmp.resolve("n" + i), i);
      AdapterChain.record(d, AdapterParent.of(below.toString()));
      below = d;
    }
    Path top = below;
    assertThat(AdapterChain.of(top.toString()).depth()).isEqualTo(AdapterChain.MAX_DEPTH);
    assertThatThrownBy(() -> AdapterChain.above(AdapterParent.of(top.toString())))
        .hasMessageContaining("is deeper than " + AdapterChain.MAX_DEPTH + " parents");
  }

  @Test
  void aParentWithoutWeightsIsRefusedNamingTheFile(@TempDir Path tmp) throws IOException {
    Files.createDirectories(tmp.resolve("empty"));
    assertThatThrownBy(() -> AdapterParent.of(tmp.resolve("empty").toString()))
        .hasMessageContaining("has no adapter_config.json");
  }

  @Test
  void theParentsHashIsAFieldOfTheChildsKeyAndRootsKeepTheirs(@TempDir Path tmp) {
    Path[] c = chain(tmp);
    LoraConfig lora = new LoraConfig(2, 4, 0, List.of(Projection.Q), false);
    TrainConfig train = new TrainConfig(4, 2, 1, 1e-3, 1, 0, 0, LrSchedule.Kind.CONSTANT, 1, 0, 5);
    AdapterKey root = AdapterKey.of(new AdapterSpec("x", lora, train), MODEL, "d");
    assertThat(root.fields()).doesNotContainKey("parent");
    AdapterParent p = AdapterParent.of(c[1].toString());
    AdapterKey child = AdapterKey.of(new AdapterSpec("x", lora, train, p), MODEL, "d");
    assertThat(child.fields()).containsEntry("parent", p.contentHash());
    adapter(c[1], 11);
    AdapterKey changed =
        AdapterKey.of(
            new AdapterSpec("x", lora, train, AdapterParent.of(c[1].toString())), MODEL, "d");
    assertThat(changed.differences(child.fields()))
        .hasSize(1)
        .first()
        .asString()
        .startsWith("parent ");
  }
}
