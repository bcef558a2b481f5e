package io.loraspark.train.lora;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.loraspark.train.cache.AdapterLease;
import io.loraspark.train.cache.AdapterSource;
import io.loraspark.train.decode.AdapterRegistry;
import io.loraspark.train.decode.DecodeAdapter;
import io.loraspark.train.model.CheckpointLoader;
import io.loraspark.train.model.ModelWeights;
import io.loraspark.train.model.Projection;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * A served child's chain is read and verified once per load, and the chain whose parents were
 * checked against the allowed roots is the chain loaded: a record rewritten right after that read
 * (to a parent outside the roots, with its true hash) cannot slip into the load, and is refused on
 * the next cold load.
 */
class ChainReadOnceTest {
  static final Path STORIES = Path.of("../models/stories260K");

  @TempDir Path tmp;

  @AfterEach
  void clearHook() {
    AdapterChain.onRead = null;
  }

  private static Path adapter(Path dir, ModelWeights base, int rank, long seed) {
    LoraConfig c = new LoraConfig(rank, 4, 0, List.of(Projection.Q, Projection.V), false);
    PeftAdapter.save(dir, LoraWeights.init(base.config(), c, seed, DataType.FLOAT), null);
    return dir;
  }

  @Test
  void theRegistryLoadsTheChainItCheckedReadOnce() throws IOException {
    ModelWeights base = CheckpointLoader.load(STORIES);
    Path served = Files.createDirectories(tmp.resolve("served"));
    Path parent = adapter(served.resolve("p"), base, 2, 1);
    Path child = adapter(served.resolve("c"), base, 3, 2);
    AdapterChain.record(child, AdapterParent.of(parent.toString()));
    Path outside = adapter(tmp.resolve("outside").resolve("q"), base, 6, 3);
    long checked = AdapterRegistry.load("c", child, base).bytes(); // rank 2 + 3
    long swapped = AdapterRegistry.load("q", outside, base).bytes(); // rank 6 alone
    AdapterSource source = AdapterSource.builder(served).allowedRoots(List.of(served)).build();

    List<String> reads = new ArrayList<>();
    AdapterChain.onRead =
        dir -> {
          reads.add(dir);
          if (reads.size() == 1) { // right after the read that the roots check uses
            AdapterChain.record(child, AdapterParent.of(outside.toString()));
          }
        };
    AdapterRegistry registry = new AdapterRegistry(base, source, Long.MAX_VALUE);
    try (AdapterLease<DecodeAdapter> lease = registry.cache().acquire("c")) {
      assertThat(reads).as("chain reads of one cold load").containsExactly(child.toString());
      assertThat(lease.value().bytes())
          .as("the loaded adapter is the checked chain p + c (rank 5), not q + c (rank 9)")
          .isEqualTo(checked)
          .isNotEqualTo(swapped);
    }
    AdapterChain.onRead = null;
    AdapterRegistry cold = new AdapterRegistry(base, source, Long.MAX_VALUE);
    assertThatThrownBy(() -> cold.cache().acquire("c"))
        .hasMessageContaining("its parent " + outside)
        .hasMessageContaining("is refused");
  }
}
