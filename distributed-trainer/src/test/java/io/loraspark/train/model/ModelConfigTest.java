package io.loraspark.train.model;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import org.junit.jupiter.api.Test;

/** config.json values the fuzzer found slipping through, each now one clear error. */
class ModelConfigTest {
  private static ObjectNode stories() throws IOException {
    return (ObjectNode)
        new ObjectMapper().readTree(TestModels.STORIES.resolve("config.json").toFile());
  }

  @Test
  void theBundledConfigLoads() throws IOException {
    ModelConfig c = ModelConfig.fromJson(stories());
    assertThat(c.qDim()).isEqualTo(c.hiddenSize());
  }

  @Test
  void zeroHeadsWithANullHeadDimIsRefusedNotADivisionByZero() throws IOException {
    ObjectNode c = stories();
    c.put("num_attention_heads", 0);
    c.putNull("head_dim");
    assertThatThrownBy(() -> ModelConfig.fromJson(c))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("num_attention_heads");
  }

  @Test
  void aProjectionWidthThatOverflowsIsRefused() throws IOException {
    ObjectNode c = stories();
    c.put("num_attention_heads", 1 << 30);
    c.put("num_key_value_heads", 1);
    c.put("head_dim", 8);
    assertThatThrownBy(() -> ModelConfig.fromJson(c))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("num_attention_heads x head_dim");
  }

  @Test
  void aTokenIdBeyondIntIsRefusedNotTruncated() throws IOException {
    ObjectNode c = stories();
    c.put("bos_token_id", 1L << 40);
    assertThatThrownBy(() -> ModelConfig.fromJson(c))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("bos_token_id");
  }
}
