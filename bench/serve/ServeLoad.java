import java.io.BufferedReader;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Load generator for {@code --mode serve}: for each concurrency level, that many clients each send
 * {@code perClient} streaming completions one after another (fixed prompt, {@code max_tokens},
 * temperature 0, {@code ignore_eos} so every request generates the same count), and it prints
 * requests/s, generated tokens/s and the median time to first token. JDK only (source launcher):
 * {@code java bench/serve/ServeLoad.java URL MODEL LEVELS PER_CLIENT MAX_TOKENS}, e.g. {@code
 * http://127.0.0.1:8000 tiny 1,8,32 4 64}.
 */
public class ServeLoad {
  static final HttpClient HTTP = HttpClient.newHttpClient();
  static final Pattern COMPLETION = Pattern.compile("\"completion_tokens\":(\\d+)");
  static final Pattern PROMPT = Pattern.compile("\"prompt_tokens\":(\\d+)");

  record Result(int tokens, int promptTokens, double ttftMs, boolean complete) {}

  static Result request(String url, String model, int maxTokens, int i) throws Exception {
    String body =
        ("{\"model\":\"%s\",\"prompt\":\"床前明月光，疑是地上霜。举头望明月，低头思故乡。第%d次\","
                + "\"max_tokens\":%d,\"temperature\":0,\"ignore_eos\":true,\"stream\":true,"
                + "\"stream_options\":{\"include_usage\":true}}")
            .formatted(model, i, maxTokens);
    long t0 = System.nanoTime();
    HttpResponse<InputStream> r =
        HTTP.send(
            HttpRequest.newBuilder(URI.create(url + "/v1/completions"))
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body))
                .build(),
            HttpResponse.BodyHandlers.ofInputStream());
    if (r.statusCode() != 200)
      throw new IllegalStateException("HTTP " + r.statusCode() + ": " + new String(r.body().readAllBytes()));
    double ttft = -1;
    int tokens = -1, promptTokens = -1;
    boolean done = false;
    try (BufferedReader in = new BufferedReader(new InputStreamReader(r.body(), StandardCharsets.UTF_8))) {
      for (String line; (line = in.readLine()) != null; ) {
        if (!line.startsWith("data: ")) continue;
        if (ttft < 0 && line.contains("\"text\"")) ttft = (System.nanoTime() - t0) / 1e6;
        Matcher m = COMPLETION.matcher(line);
        if (m.find()) tokens = Integer.parseInt(m.group(1));
        Matcher p = PROMPT.matcher(line);
        if (p.find()) promptTokens = Integer.parseInt(p.group(1));
        if (line.equals("data: [DONE]")) done = true;
      }
    }
    return new Result(tokens, promptTokens, ttft, done && tokens == maxTokens);
  }

  public static void main(String[] a) throws Exception {
    String url = a[0], model = a[1];
    int[] levels = Arrays.stream(a[2].split(",")).mapToInt(Integer::parseInt).toArray();
    int perClient = Integer.parseInt(a[3]), maxTokens = Integer.parseInt(a[4]);
    request(url, model, maxTokens, -1); // warm-up
    for (int clients : levels) {
      long t0 = System.nanoTime();
      List<Future<List<Result>>> fs = new ArrayList<>();
      try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
        for (int c = 0; c < clients; c++) {
          int id = c;
          fs.add(pool.submit(() -> {
            List<Result> rs = new ArrayList<>();
            for (int k = 0; k < perClient; k++) rs.add(request(url, model, maxTokens, id * 1000 + k));
            return rs;
          }));
        }
        List<Result> all = new ArrayList<>();
        for (var f : fs) all.addAll(f.get());
        double s = (System.nanoTime() - t0) / 1e9;
        long tokens = all.stream().mapToLong(Result::tokens).sum();
        long prompt = all.stream().mapToLong(Result::promptTokens).sum();
        long complete = all.stream().filter(Result::complete).count();
        double[] ttft = all.stream().mapToDouble(Result::ttftMs).sorted().toArray();
        System.out.printf(
            "RESULT clients=%d requests=%d complete=%d seconds=%.2f requests_per_s=%.2f tokens_per_s=%.1f prompt_tokens_per_s=%.1f ttft_ms_p50=%.0f%n",
            clients, all.size(), complete, s, all.size() / s, tokens / s, prompt / s, ttft[ttft.length / 2]);
      }
    }
  }
}
