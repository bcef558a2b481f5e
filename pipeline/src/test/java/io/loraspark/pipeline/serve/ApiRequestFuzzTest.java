package io.loraspark.pipeline.serve;

import static org.assertj.core.api.Assertions.assertThat;

import com.code_intelligence.jazzer.junit.DictionaryFile;
import com.code_intelligence.jazzer.junit.FuzzTest;
import com.fasterxml.jackson.databind.JsonNode;
import java.math.BigInteger;
import java.util.List;

/**
 * Fuzzes request bodies of {@code /v1/completions} and {@code /v1/chat/completions}: {@link
 * ApiRequest#parse}. Contract: it returns a request whose every field is in its documented range
 * (and equals what the JSON said), or throws {@link ApiError} with status 400 and a one-line
 * message; any other exception (NPE, class cast, number format, stack overflow, ...) is a bug.
 * Corpus: {@code ApiRequestFuzzTestInputs/}, dictionary {@code ApiRequestFuzzTest.dict}.
 */
class ApiRequestFuzzTest {

  /** The libFuzzer dictionary both methods share: a resource beside this class. */
  private static final String DICTIONARY = "ApiRequestFuzzTest.dict";

  @DictionaryFile(resourcePath = DICTIONARY)
  @FuzzTest(maxDuration = "30s")
  void completion(byte[] body) {
    check(body, false);
  }

  @DictionaryFile(resourcePath = DICTIONARY)
  @FuzzTest(maxDuration = "30s")
  void chat(byte[] body) {
    check(body, true);
  }

  private static void check(byte[] body, boolean chat) {
    ApiRequest r;
    try {
      r = ApiRequest.parse(body, chat);
    } catch (ApiError e) {
      assertThat(e.status).as("status of %s", e.getMessage()).isEqualTo(400);
      assertThat(e.type).isEqualTo("invalid_request_error");
      assertThat(e.getMessage()).isNotBlank().doesNotContain("\n").doesNotContain("\r");
      assertThat(e.body().get("error").get("message").asText()).isEqualTo(e.getMessage());
      return;
    }
    JsonNode root = readBack(body);
    assertThat(r.chat()).isEqualTo(chat);
    assertThat(r.model()).isNotEmpty().isEqualTo(root.get("model").textValue());
    if (chat) {
      assertThat(r.messages()).isNotEmpty();
      assertThat(r.prompt()).isNull();
      assertThat(r.promptIds()).isNull();
      for (ApiRequest.Message m : r.messages()) {
        assertThat(m.role()).isIn("system", "user", "assistant");
        assertThat(m.content()).isNotNull();
      }
    } else {
      assertThat(r.messages()).isNull();
      assertThat(r.prompt() == null)
          .as("exactly one of prompt, prompt ids")
          .isNotEqualTo(r.promptIds() == null);
      if (r.promptIds() != null) {
        assertThat(r.promptIds()).isNotEmpty();
        JsonNode ids = root.get("prompt");
        for (int i = 0; i < r.promptIds().length; i++) {
          assertThat(ids.get(i).bigIntegerValue())
              .as("prompt id %d as sent", i)
              .isEqualTo(BigInteger.valueOf(r.promptIds()[i]));
        }
      }
    }
    if (r.maxTokens() != null) {
      assertThat(r.maxTokens()).isNotNegative();
    }
    // numeric comparisons: -0.0 is a valid (greedy) temperature
    assertThat(r.temperature() >= 0 && r.temperature() <= 2)
        .as("temperature %s", r.temperature())
        .isTrue();
    assertThat(r.topP()).isGreaterThan(0.0).isLessThanOrEqualTo(1.0);
    assertThat(r.topK()).isNotNegative();
    assertThat(r.stops()).hasSizeLessThanOrEqualTo(4).allSatisfy(s -> assertThat(s).isNotEmpty());
    assertThat(r.adapters()).hasSizeLessThanOrEqualTo(16);
    for (ApiRequest.Weighted w : r.adapters()) {
      assertThat(w.name()).isNotNull();
      assertThat(w.weight()).isBetween(-100f, 100f);
    }
    // integers are taken as sent, never truncated to fit an int
    JsonNode mct = root.get("max_completion_tokens");
    String maxKey = chat && mct != null && !mct.isNull() ? "max_completion_tokens" : "max_tokens";
    for (String key : List.of(maxKey, "seed", "top_k", "n", "best_of", "top_logprobs")) {
      JsonNode v = root.get(key);
      if (v != null && v.isNumber()) {
        assertThat(v.canConvertToInt()).as("%s = %s accepted", key, v).isTrue();
      }
    }
    JsonNode logprobs = root.get("logprobs");
    if (!chat && logprobs != null && logprobs.isNumber()) {
      assertThat(logprobs.bigIntegerValue())
          .as("completions logprobs %s accepted; only 0 or 1 are valid", logprobs)
          .isIn(BigInteger.ZERO, BigInteger.ONE);
    }
  }

  /** The body as the parser read it (it parsed, so it is one JSON object). */
  private static JsonNode readBack(byte[] body) {
    try {
      return ApiRequest.JSON.readTree(body);
    } catch (java.io.IOException e) {
      throw new AssertionError("parsed once but not twice: " + e, e);
    }
  }
}
