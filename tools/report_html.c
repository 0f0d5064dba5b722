/* membudget report --html FILE: one self-contained page (no network: the
 * style, the script and the data inline, a Content-Security-Policy that
 * forbids every fetch).  The page shows the death line, an icicle graph of
 * the estimated live bytes by stack (outermost frame on top; a click zooms
 * into a frame, a search box marks the frames whose name matches and sums
 * their bytes), the footprint timeline (the SVG of --svg, inline), the
 * limit's derivation, the footprint breakdown and the allocator section.
 *
 * Everything from the dump is hostile: the text parts are written with
 * tx_xml (HTML text and attribute values); the stacks go in a JSON data block
 * (<script type="application/json">) that the script reads with JSON.parse
 * and puts in the page only as text (textContent), never as markup.  In that
 * block every '<' is written \u003c, so no "</script>" or "<!--" can end or
 * bend it.  The work and the size are proportional to the sites and frames
 * read (bounded by the loader: RP_FRAMES_MAX frames a site); the script draws
 * only frames at least a pixel wide. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "tools/report_model.h"
#include "tools/textout.h"

static const char page_style[] =
    "body{font:13px sans-serif;margin:16px;color:#222}"
    "h1{font-size:17px}h2{font-size:15px;margin-top:22px}"
    "table{border-collapse:collapse}td,th{padding:2px 10px 2px 0;text-align:left;"
    "vertical-align:top}td.n{text-align:right;font-variant-numeric:tabular-nums}"
    "#fg{position:relative;width:100%;overflow:hidden;border:1px solid #ccc;background:#fafafa}"
    ".fr{position:absolute;height:17px;line-height:17px;font-size:11px;overflow:hidden;"
    "white-space:nowrap;cursor:pointer;box-sizing:border-box;padding-left:2px;"
    "border-right:1px solid #fff}"
    ".fr.anc{opacity:.6}.fr.hit{background:#c040ff!important;color:#fff}"
    "#bar{margin:6px 0}#bar input{width:280px}#status{margin-left:12px;color:#555}"
    "code{font-size:12px}";

/* The script: builds the tree from the data and draws it.  No text from the
 * dump is ever parsed as markup: it goes in through textContent and title. */
static const char page_script[] =
    "(function(){'use strict';\n"
    "var D=JSON.parse(document.getElementById('mb-data').textContent);\n"
    "var units=['B','KiB','MiB','GiB','TiB','PiB','EiB'];\n"
    "function fmt(b){var u=0;while(b>=1024&&u<6){b/=1024;u++;}"
    "var s=u?(Math.round(b*10)/10).toString():String(b);return s+' '+units[u];}\n"
    "function node(n,p){return {n:n,v:0,c:new Map(),p:p};}\n"
    "var root=node(-1,null);\n"
    "D.stacks.forEach(function(s){var t=root;t.v+=s[0];for(var i=1;i<s.length;i++){"
    "var k=s[i],c=t.c.get(k);if(!c){c=node(k,t);t.c.set(k,c);}c.v+=s[0];t=c;}});\n"
    "var fg=document.getElementById('fg'),status=document.getElementById('status'),"
    "search=document.getElementById('search'),zoom=root,term='',H=18;\n"
    "function name(t){return t===root?'all sites':D.names[t.n];}\n"
    "function hue(s){var h=0;for(var i=0;i<s.length;i++)h=(h*31+s.charCodeAt(i))>>>0;"
    "return 'hsl('+(10+h%45)+','+(70+h%25)+'%,'+(55+h%15)+'%)';}\n"
    "function matches(t){return term!==''&&t!==root&&name(t).indexOf(term)>=0;}\n"
    "function box(t,x,w,d,cls){var e=document.createElement('div');"
    "e.className='fr'+(cls?' '+cls:'')+(matches(t)?' hit':'');"
    "e.style.left=x+'px';e.style.width=Math.max(w,1)+'px';e.style.top=(d*H)+'px';"
    "e.style.background=t===root?'#ddd':hue(name(t));"
    "if(w>24)e.textContent=name(t);"
    "var pct=root.v?(100*t.v/root.v).toFixed(1):'0';"
    "e.title=name(t)+(t.n>=0&&D.where[t.n]?'\\n'+D.where[t.n]:'')+'\\n'+fmt(t.v)+' ('+pct+'%)';"
    "e.dataset.name=name(t);e.dataset.bytes=String(t.v);"
    "e.addEventListener('click',function(){zoom=t;draw();});fg.appendChild(e);}\n"
    "function draw(){fg.textContent='';var W=fg.clientWidth||1000,depth=0,chain=[];"
    "for(var a=zoom;a;a=a.p)chain.unshift(a);"
    "chain.forEach(function(a,i){box(a,0,W,i,a===zoom?'':'anc');});"
    "function walk(t,x,w,d){if(d>depth)depth=d;var kids=Array.from(t.c.values())"
    ".sort(function(p,q){return q.v-p.v;}),cx=x;kids.forEach(function(k){"
    "var kw=t.v?w*k.v/t.v:0;if(kw>=1){box(k,cx,kw,d,'');walk(k,cx,kw,d+1);}cx+=kw;});}\n"
    "walk(zoom,0,W,chain.length);fg.style.height=((depth+1)*H+4)+'px';"
    "var hit=0;(function sum(t){if(matches(t)){hit+=t.v;return;}t.c.forEach(sum);})(root);"
    "status.textContent=(zoom===root?'':'zoomed into '+name(zoom)+' ('+fmt(zoom.v)+'); ')+"
    "(term?'matched '+fmt(hit)+' ('+(root.v?(100*hit/root.v).toFixed(1):'0')+'%)':"
    "fmt(root.v)+' in '+D.stacks.length+' sites');}\n"
    "search.addEventListener('input',function(){term=search.value;draw();});\n"
    "document.getElementById('reset').addEventListener('click',function(){zoom=root;draw();});\n"
    "window.addEventListener('resize',draw);draw();})();\n";

/* The data block: JSON with each '<' as \u003c and each DEL as \u007f (both
 * can only be inside strings; jansson leaves them raw, and no control byte
 * goes into the page).  False when out of memory. */
static bool write_data(FILE *out, const json_t *data) {
    char *text = json_dumps(data, JSON_COMPACT);
    if (text == NULL) return false;
    fputs("<script type=\"application/json\" id=\"mb-data\">", out);
    for (const char *p = text; *p; p++) {
        if (*p == '<')
            fputs("\\u003c", out);
        else if (*p == 0x7f)
            fputs("\\u007f", out);
        else
            fputc(*p, out);
    }
    fputs("</script>\n", out);
    free(text);
    return true;
}

/* The stacks as indexes into a table of frame names (each name once):
 * {"names": [...], "where": [...], "stacks": [[bytes, outermost, ..., innermost]]}. */
static json_t *stack_data(const struct rp_report *r) {
    json_t *data = json_object(), *names = json_array(), *where = json_array(),
           *stacks = json_array(), *index = json_object();
    for (size_t i = 0; i < r->site_count; i++) {
        const struct rp_site *s = &r->sites[i];
        if (s->est_bytes == 0) continue;
        json_t *stack = json_array();
        json_array_append_new(
            stack, json_integer(s->est_bytes > INT64_MAX ? INT64_MAX : (json_int_t)s->est_bytes));
        size_t total = s->frame_count + 1;
        for (size_t k = 0; k < total; k++) {
            /* k = 0: the mark of a cut stack, or of one without frames. */
            const struct rp_frame *f = k ? &s->frames[s->frame_count - k] : NULL;
            char name[600], at[RP_PATH_MAX + 32];
            at[0] = '\0';
            if (f == NULL) {
                if (!s->truncated && s->frame_count > 0) continue;
                snprintf(name, sizeof name, "%s",
                         s->truncated    ? rp_truncation_mark(r)
                         : s->unrecorded ? "[stack not recorded]"
                                         : "[no frames]");
            } else {
                rp_frame_name(f, name, sizeof name - 16);
                if (f->inlined) strcat(name, " (inlined)");
                if (f->file != NULL) snprintf(at, sizeof at, "%s:%d", f->file, f->line);
            }
            /* The key: name and place; bytes not UTF-8 are shown as U+FFFD. */
            char key[sizeof name + sizeof at + 2];
            snprintf(key, sizeof key, "%s\n%s", name, at);
            json_t *known = json_object_get(index, key);
            size_t id;
            if (known != NULL) {
                id = (size_t)json_integer_value(known);
            } else {
                id = json_array_size(names);
                json_array_append_new(names, rp_json_text(name));
                json_array_append_new(where, rp_json_text(at));
                /* jansson keys are UTF-8: a name that is not is not shared. */
                if (tx_is_utf8(key)) json_object_set_new(index, key, json_integer((json_int_t)id));
            }
            json_array_append_new(stack, json_integer((json_int_t)id));
        }
        json_array_append_new(stacks, stack);
    }
    json_decref(index);
    json_object_set_new(data, "names", names);
    json_object_set_new(data, "where", where);
    json_object_set_new(data, "stacks", stacks);
    return data;
}

static void text_row(FILE *out, const char *key, const char *value, bool numeric) {
    fputs("<tr><th>", out);
    tx_xml(out, key);
    fprintf(out, "</th><td%s>", numeric ? " class=\"n\"" : "");
    tx_xml(out, value);
    fputs("</td></tr>\n", out);
}

/* An object's members as rows: numbers as bytes where the key says so. */
static void object_table(FILE *out, const json_t *obj) {
    fputs("<table>\n", out);
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v) {
        char buf[128];
        if (json_is_integer(v) || json_is_real(v)) {
            uint64_t n = rp_u64(obj, key);
            size_t len = strlen(key);
            if (len > 6 && strcmp(key + len - 6, "_bytes") == 0) {
                char b[32];
                snprintf(buf, sizeof buf, "%s (%" PRIu64 ")", mb_bytes_text(b, sizeof b, n), n);
            } else {
                snprintf(buf, sizeof buf, "%" PRIu64, n);
            }
            text_row(out, key, buf, true);
        } else if (json_is_string(v)) {
            text_row(out, key, json_string_value(v), false);
        } else {
            char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
            text_row(out, key, text != NULL ? text : "", false);
            free(text);
        }
    }
    fputs("</table>\n", out);
}

#define HTML_THRESHOLD(stem, label, zero, page, help)                                              \
    {                                                                                              \
        char b[32];                                                                                \
        fputs("<tr><th>", out);                                                                    \
        tx_xml(out, label);                                                                        \
        fprintf(out, "</th><td class=\"n\">%s</td><td>",                                           \
                mb_bytes_text(b, sizeof b, r->stem##_bytes));                                      \
        tx_xml(out, r->stem##_source);                                                             \
        fputs("</td></tr>\n", out);                                                                \
    }

bool rp_write_html(const struct rp_report *r, const char *path) {
    FILE *out = fopen(path, "w");
    if (out == NULL) {
        fprintf(stderr, "membudget report: cannot write %s\n", path);
        return false;
    }
    char b1[32], b2[32];
    fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
          "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
          "script-src 'unsafe-inline'; style-src 'unsafe-inline'\">\n<title>membudget: pid ",
          out);
    fprintf(out, "%" PRIu64 " (", r->pid);
    tx_xml(out, r->comm);
    fprintf(out, ")</title>\n<style>%s</style></head><body>\n<h1>membudget: pid %" PRIu64 " (",
            page_style, r->pid);
    tx_xml(out, r->comm);
    fprintf(out, "): footprint %s, limit %s (", mb_bytes_text(b1, sizeof b1, r->footprint_bytes),
            mb_bytes_text(b2, sizeof b2, r->kill_bytes));
    tx_xml(out, r->kill_source);
    fputs("), ", out);
    tx_xml(out, r->reason);
    fputs("; membudget ", out);
    tx_xml(out, r->version);
    fputs("</h1>\n", out);
    for (size_t i = 0; i < r->note_count && i < RP_NOTES_MAX; i++) {
        fputs("<p>note: ", out);
        tx_xml(out, r->notes[i]);
        fputs("</p>\n", out);
    }

    fprintf(out, "<h2>Live bytes by stack (estimated from %" PRIu64 " samples, 1 per %s)</h2>\n",
            rp_u64(r->sampling, "live_samples"),
            mb_bytes_text(b1, sizeof b1, rp_u64(r->sampling, "rate_bytes")));
    fputs("<div id=\"bar\"><input id=\"search\" type=\"search\" placeholder=\"search frames\">"
          " <button id=\"reset\" type=\"button\">reset zoom</button><span id=\"status\"></span>"
          "</div>\n<div id=\"fg\"></div>\n"
          "<p>Outermost frame on top; a click zooms into a frame, the rows above it lead back "
          "out.</p>\n",
          out);

    fputs("<h2>Footprint timeline</h2>\n", out);
    bool ok = rp_svg_to(r, out, false);

    fputs("<h2>The limit and how it was derived</h2>\n<table>\n", out);
    MB_STATS(MB_STATS_NONE, HTML_THRESHOLD, MB_STATS_NONE)
    fputs("</table>\n<h2>Footprint</h2>\n", out);
    object_table(out, r->footprint);
    fputs("<h2>Allocator</h2>\n", out);
    const json_t *allocator = json_object_get(r->root, "allocator");
    if (json_is_object(allocator))
        object_table(out, allocator);
    else
        fputs("<p>This report has no allocator section.</p>\n", out);

    json_t *data = stack_data(r);
    ok = write_data(out, data) && ok;
    json_decref(data);
    fprintf(out, "<script>\n%s</script>\n</body></html>\n", page_script);
    if (fclose(out) != 0 || !ok) {
        fprintf(stderr, "membudget report: cannot write %s\n", path);
        return false;
    }
    return true;
}
