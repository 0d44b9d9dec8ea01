// Test infrastructure only: the Elasticsearch integ-test distribution (Maven Central) carries
// x-pack-security but not the analysis-common module, whose `uax_url_email` tokenizer and
// `pattern_capture` and `unique` token filters the .security index's `email` analyzer names; without
// them no native role, user or API key can be stored. This plugin provides those three with Lucene's
// own implementations, so the tests
// exercise the real security code paths. A full distribution has analysis-common and needs none of this.
package org.logship.testshim;

import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

import org.apache.lucene.analysis.TokenStream;
import org.apache.lucene.analysis.Tokenizer;
import org.apache.lucene.analysis.email.UAX29URLEmailTokenizer;
import org.apache.lucene.analysis.miscellaneous.RemoveDuplicatesTokenFilter;
import org.apache.lucene.analysis.pattern.PatternCaptureGroupTokenFilter;
import org.elasticsearch.index.analysis.AbstractTokenFilterFactory;
import org.elasticsearch.index.analysis.TokenFilterFactory;
import org.elasticsearch.index.analysis.TokenizerFactory;
import org.elasticsearch.indices.analysis.AnalysisModule.AnalysisProvider;
import org.elasticsearch.plugins.AnalysisPlugin;
import org.elasticsearch.plugins.Plugin;

public class PatternCapturePlugin extends Plugin implements AnalysisPlugin {
    @Override
    public Map<String, AnalysisProvider<TokenizerFactory>> getTokenizers() {
        return Map.of("uax_url_email", (indexSettings, env, name, settings) -> TokenizerFactory.newFactory(name, () -> {
            UAX29URLEmailTokenizer t = new UAX29URLEmailTokenizer();
            t.setMaxTokenLength(settings.getAsInt("max_token_length", 255));
            return (Tokenizer) t;
        }));
    }

    @Override
    public Map<String, AnalysisProvider<TokenFilterFactory>> getTokenFilters() {
        return Map.of("unique", (indexSettings, env, name, settings) -> new AbstractTokenFilterFactory(name, settings) {
            @Override
            public TokenStream create(TokenStream in) {
                return new RemoveDuplicatesTokenFilter(in);
            }
        }, "pattern_capture", (indexSettings, env, name, settings) -> {
            List<String> raw = settings.getAsList("patterns");
            Pattern[] patterns = raw.stream().map(Pattern::compile).toArray(Pattern[]::new);
            boolean preserve = settings.getAsBoolean("preserve_original", true);
            return new AbstractTokenFilterFactory(name, settings) {
                @Override
                public TokenStream create(TokenStream in) {
                    return new PatternCaptureGroupTokenFilter(in, preserve, patterns);
                }
            };
        });
    }
}
