package io.loraspark.pipeline.serve;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import java.util.ArrayList;
import java.util.List;

/**
 * A {@code /v1/completions} or {@code /v1/chat/completions} body, parsed strictly and checked field
 * by field as OpenAI documents them ({@link ApiError#invalid} naming the field). Fields clients
 * send at their neutral values ({@code n: 1}, zero penalties, {@code user}, {@code echo: false}, …)
 * are accepted; other values of fields this server does not implement are refused, naming the
 * field.
 *
 * @param chat whether it is a chat completion
 * @param model the base model's name, an adapter's name, or the router's name
 * @param prompt the completion prompt text, or null (chat, or token ids)
 * @param promptIds the completion prompt as token ids, or null
 * @param messages the chat messages, or null
 * @param maxTokens the most tokens to generate, or null for the default
 * @param temperature 0 is greedy
 * @param topP nucleus mass, (0, 1]
 * @param topK the top-k extension, 0 for none
 * @param seed the sampling seed, or null
 * @param stops stop strings (at most 4)
 * @param stream whether to answer as server-sent events
 * @param includeUsage whether a stream ends with a usage chunk
 * @param logprobs whether to report the chosen tokens' log-probabilities
 * @param ignoreEos vLLM's extension: EOS and end-of-turn ids do not end the request (benchmarks and
 *     tests that need exactly {@code max_tokens}); stop strings still do
 * @param adapters the composition extension: adapters with weights, or empty
 */
record ApiRequest(
    boolean chat,
    String model,
    String prompt,
    int[] promptIds,
    List<Message> messages,
    Integer maxTokens,
    double temperature,
    double topP,
    int topK,
    Long seed,
    List<String> stops,
    boolean stream,
    boolean includeUsage,
    boolean logprobs,
    boolean ignoreEos,
    List<Weighted> adapters) {

  /** A chat message: role (system, user or assistant) and its text. */
  record Message(String role, String content) {}

  /** An adapter of a request-time composition. */
  record Weighted(String name, float weight) {}

  static final ObjectMapper JSON =
      JsonMapper.builder(
              JsonFactory.builder().enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION).build())
          .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
          .build();

  /** Parses a request body. */
  static ApiRequest parse(byte[] body, boolean chat) {
    JsonNode root = object(body);
    neutral(root);
    String model = text(root, "model", true);
    String prompt = null;
    int[] promptIds = null;
    List<Message> messages = null;
    if (chat) {
      messages = messages(root.get("messages"));
    } else {
      JsonNode p = root.get("prompt");
      if (p != null && p.isArray() && p.size() > 0 && p.get(0).isIntegralNumber()) {
        promptIds = ids(p);
      } else if (p != null && p.isArray() && p.size() == 1 && p.get(0).isTextual()) {
        prompt = p.get(0).textValue();
      } else if (p != null && p.isTextual()) {
        prompt = p.textValue();
      } else {
        throw ApiError.invalid(
            "prompt", "prompt must be a string, a list of one string, or a list of token ids");
      }
    }
    Integer maxTokens = maxTokens(root, chat);
    double temperature = number(root, "temperature", 1.0, 0, 2);
    double topP = number(root, "top_p", 1.0, 0, 1);
    if (topP == 0) {
      throw ApiError.invalid("top_p", "top_p must be in (0, 1] but was 0");
    }
    Integer topK = intOrNull(root, "top_k");
    if (topK != null && topK < -1) {
      throw ApiError.invalid("top_k", "top_k must be -1 or 0 (no limit) or a count >= 1");
    }
    Long seed = longOrNull(root, "seed");
    boolean stream = bool(root, "stream", false);
    JsonNode options = root.get("stream_options");
    boolean includeUsage =
        options != null && options.isObject() && bool(options, "include_usage", false);
    return new ApiRequest(
        chat,
        model,
        prompt,
        promptIds,
        messages,
        maxTokens,
        temperature,
        topP,
        topK == null || topK < 0 ? 0 : topK,
        seed,
        stops(root.get("stop")),
        stream,
        includeUsage,
        logprobs(root, chat),
        bool(root, "ignore_eos", false),
        adapters(root.get("adapters")));
  }

  /** The body as a JSON object. */
  private static JsonNode object(byte[] body) {
    JsonNode root;
    try {
      root = JSON.readTree(body);
    } catch (JsonProcessingException e) {
      throw ApiError.invalid(null, "the body is not valid JSON: " + e.getOriginalMessage());
    } catch (java.io.IOException e) {
      throw ApiError.invalid(null, "the body could not be read: " + e.getMessage());
    }
    if (root == null || !root.isObject()) {
      throw ApiError.invalid(null, "the body must be a JSON object");
    }
    return root;
  }

  /** max_tokens, or chat's max_completion_tokens when given; null when neither is. */
  private static Integer maxTokens(JsonNode root, boolean chat) {
    String key =
        chat && root.hasNonNull("max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
    Integer max = intOrNull(root, key);
    if (max != null && max < 0) {
      throw ApiError.invalid(key, key + " must be >= 0 but was " + max);
    }
    return max;
  }

  /** Refuses non-neutral values of the OpenAI fields this server does not implement. */
  private static void neutral(JsonNode root) {
    Integer n = intOrNull(root, "n");
    if (n != null && n != 1) {
      throw ApiError.invalid("n", "n must be 1: one choice per request");
    }
    Integer bestOf = intOrNull(root, "best_of");
    if (bestOf != null && bestOf != 1) {
      throw ApiError.invalid("best_of", "best_of must be 1");
    }
    for (String penalty : List.of("presence_penalty", "frequency_penalty")) {
      if (number(root, penalty, 0, -2, 2) != 0) {
        throw ApiError.invalid(penalty, penalty + " is not supported; send 0 or leave it out");
      }
    }
    if (bool(root, "echo", false)) {
      throw ApiError.invalid("echo", "echo is not supported; send false or leave it out");
    }
    for (String absent : List.of("suffix", "tools", "functions", "response_format")) {
      JsonNode v = root.get(absent);
      if (v != null && !v.isNull() && !(v.isArray() && v.isEmpty())) {
        throw ApiError.invalid(absent, absent + " is not supported; leave it out");
      }
    }
    JsonNode bias = root.get("logit_bias");
    if (bias != null && !bias.isNull() && !(bias.isObject() && bias.isEmpty())) {
      throw ApiError.invalid("logit_bias", "logit_bias is not supported; leave it out");
    }
    JsonNode user = root.get("user");
    if (user != null && !user.isNull() && !user.isTextual()) {
      throw ApiError.invalid("user", "user must be a string");
    }
  }

  private static List<Message> messages(JsonNode m) {
    if (m == null || !m.isArray() || m.isEmpty()) {
      throw ApiError.invalid("messages", "messages must be a non-empty list of {role, content}");
    }
    List<Message> out = new ArrayList<>();
    for (int i = 0; i < m.size(); i++) {
      JsonNode msg = m.get(i);
      String where = "messages[" + i + "]";
      if (!msg.isObject()) {
        throw ApiError.invalid(where, where + " must be an object with role and content");
      }
      JsonNode role = msg.get("role");
      String r = role != null && role.isTextual() ? role.textValue() : "";
      if (r.equals("developer")) {
        r = "system";
      }
      if (!List.of("system", "user", "assistant").contains(r)) {
        throw ApiError.invalid(
            where + ".role", where + ".role must be system, user or assistant but was " + role);
      }
      out.add(new Message(r, content(msg.get("content"), where + ".content")));
    }
    return out;
  }

  /** A message's text: a string, or a list of {"type": "text", "text": ...} parts. */
  private static String content(JsonNode c, String where) {
    if (c != null && c.isTextual()) {
      return c.textValue();
    }
    if (c != null && c.isArray()) {
      StringBuilder sb = new StringBuilder();
      for (JsonNode part : c) {
        JsonNode t = part.get("text");
        if (!"text".equals(part.path("type").asText()) || t == null || !t.isTextual()) {
          throw ApiError.invalid(where, where + " parts must be {\"type\": \"text\", \"text\"}");
        }
        sb.append(t.textValue());
      }
      return sb.toString();
    }
    throw ApiError.invalid(where, where + " must be a string or a list of text parts");
  }

  private static int[] ids(JsonNode p) {
    int[] ids = new int[p.size()];
    for (int i = 0; i < ids.length; i++) {
      JsonNode id = p.get(i);
      if (!id.isIntegralNumber() || !id.canConvertToInt()) {
        throw ApiError.invalid("prompt", "prompt token " + i + " must be an integer id");
      }
      ids[i] = id.intValue();
    }
    return ids;
  }

  private static List<String> stops(JsonNode s) {
    List<String> out = new ArrayList<>();
    if (s == null || s.isNull()) {
      return out;
    }
    if (s.isTextual()) {
      out.add(s.textValue());
    } else if (s.isArray() && s.size() <= 4) {
      for (JsonNode v : s) {
        if (!v.isTextual()) {
          throw ApiError.invalid("stop", "stop must be a string or a list of up to 4 strings");
        }
        out.add(v.textValue());
      }
    } else {
      throw ApiError.invalid("stop", "stop must be a string or a list of up to 4 strings");
    }
    if (out.stream().anyMatch(String::isEmpty)) {
      throw ApiError.invalid("stop", "a stop string must not be empty");
    }
    return out;
  }

  private static boolean logprobs(JsonNode root, boolean chat) {
    JsonNode v = root.get("logprobs");
    if (v == null || v.isNull()) {
      return false;
    }
    if (chat) {
      if (!v.isBoolean()) {
        throw ApiError.invalid("logprobs", "logprobs must be true or false");
      }
      Integer top = intOrNull(root, "top_logprobs");
      if (top != null && top != 0) {
        throw ApiError.invalid("top_logprobs", "top_logprobs is not supported; send 0");
      }
      return v.booleanValue();
    }
    if (!v.isIntegralNumber() || !v.canConvertToInt() || v.intValue() != 0 && v.intValue() != 1) {
      throw ApiError.invalid(
          "logprobs", "logprobs must be 0 or 1 (the chosen token's; alternatives not supported)");
    }
    return true;
  }

  private static List<Weighted> adapters(JsonNode a) {
    List<Weighted> out = new ArrayList<>();
    if (a == null || a.isNull()) {
      return out;
    }
    if (!a.isArray() || a.size() > 16) {
      throw ApiError.invalid("adapters", "adapters must be a list of up to 16 {name, weight}");
    }
    for (int i = 0; i < a.size(); i++) {
      JsonNode e = a.get(i);
      String where = "adapters[" + i + "]";
      if (!e.isObject() || !e.path("name").isTextual()) {
        throw ApiError.invalid(where, where + " must be {\"name\": ..., \"weight\": ...}");
      }
      double w;
      try {
        w = number(e, "weight", 1.0, -100, 100);
      } catch (ApiError bad) {
        throw ApiError.invalid(where + ".weight", where + "." + bad.getMessage());
      }
      out.add(new Weighted(e.get("name").textValue(), (float) w));
    }
    return out;
  }

  private static String text(JsonNode root, String key, boolean required) {
    JsonNode v = root.get(key);
    if (v == null || v.isNull()) {
      if (required) {
        throw ApiError.invalid(key, key + " is required");
      }
      return null;
    }
    if (!v.isTextual() || v.textValue().isEmpty()) {
      throw ApiError.invalid(key, key + " must be a non-empty string");
    }
    return v.textValue();
  }

  private static Integer intOrNull(JsonNode root, String key) {
    JsonNode v = root.get(key);
    if (v == null || v.isNull()) {
      return null;
    }
    if (!v.isIntegralNumber() || !v.canConvertToInt()) {
      throw ApiError.invalid(key, key + " must be an integer but was " + v);
    }
    return v.intValue();
  }

  private static Long longOrNull(JsonNode root, String key) {
    JsonNode v = root.get(key);
    if (v == null || v.isNull()) {
      return null;
    }
    if (!v.isIntegralNumber() || !v.canConvertToLong()) {
      throw ApiError.invalid(key, key + " must be a 64-bit integer but was " + v);
    }
    return v.longValue();
  }

  private static double number(JsonNode root, String key, double missing, double lo, double hi) {
    JsonNode v = root.get(key);
    if (v == null || v.isNull()) {
      return missing;
    }
    if (!v.isNumber() || !Double.isFinite(v.doubleValue())) {
      throw ApiError.invalid(key, key + " must be a number but was " + v);
    }
    double d = v.doubleValue();
    if (d < lo || d > hi) {
      throw ApiError.invalid(key, key + " must be in [" + lo + ", " + hi + "] but was " + d);
    }
    return d;
  }

  private static boolean bool(JsonNode root, String key, boolean missing) {
    JsonNode v = root.get(key);
    if (v == null || v.isNull()) {
      return missing;
    }
    if (!v.isBoolean()) {
      throw ApiError.invalid(key, key + " must be true or false but was " + v);
    }
    return v.booleanValue();
  }
}
