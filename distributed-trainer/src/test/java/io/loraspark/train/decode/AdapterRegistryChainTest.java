package io.loraspark.train.decode;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.loraspark.train.cache.AdapterSource;
import io.loraspark.train.lora.AdapterChain;
import io.loraspark.train.lora.AdapterParent;
import io.loraspark.train.lora.LoraMethod;
import io.loraspark.train.lora.PeftAdapter;
import io.loraspark.train.model.ModelWeights;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A served child adapter decodes as its chain's exact {@code cat}, and its recorded parents must
 * lie inside the adapter source's allowed roots like any adapter loaded by path.
 */
class AdapterRegistryChainTest {
  @TempDir Path tmp;

  @Test
  void aChildDecodesAsItsChainAndItsParentsMustBeInsideTheAllowedRoots() throws IOException {
    ModelWeights base = DecodeFixture.model(tmp.resolve("m"), "LlamaForCausalLM", false, true, 3);
    Path served = Files.createDirectories(tmp.resolve("served"));
    Path outside = Files.createDirectories(tmp.resolve("outside"));
    PeftAdapter.save(
        outside.resolve("p"), DecodeFixture.adapter(base, LoraMethod.LORA, 2, 1), null);
    PeftAdapter.save(served.resolve("p"), DecodeFixture.adapter(base, LoraMethod.LORA, 2, 1), null);
    Path in = served.resolve("in");
    PeftAdapter.save(in, DecodeFixture.adapter(base, LoraMethod.LORA, 3, 2), null);
    AdapterChain.record(in, AdapterParent.of(served.resolve("p").toString()));
    Path out = served.resolve("out");
    PeftAdapter.save(out, DecodeFixture.adapter(base, LoraMethod.LORA, 3, 2), null);
    AdapterChain.record(out, AdapterParent.of(outside.resolve("p").toString()));

    AdapterSource source = AdapterSource.builder(served).allowedRoots(List.of(served)).build();
    AdapterRegistry registry = new AdapterRegistry(base, source, Long.MAX_VALUE);
    try (AdapterRegistry.MixLease lease = registry.acquire(List.of("in"), new float[] {1f})) {
      assertThat(lease).isNotNull();
    }
    assertThat(AdapterRegistry.load("in", in, base).bytes())
        .as("rank 2 + 3 decodes as one rank-5 LoRA, larger than the child alone")
        .isGreaterThan(AdapterRegistry.load("p", served.resolve("p"), base).bytes());
    assertThatThrownBy(() -> registry.acquire(List.of("out"), new float[] {1f}))
        .hasMessageContaining("its parent " + outside.resolve("p"))
        .hasMessageContaining("is refused");
  }
}
