/* The level keyword heuristic of parsers/levels.py in C, for ASCII text.
 *
 * It runs on every line of free text (most container output), where the Python version
 * (a lower-cased copy and a dozen substring scans) was the parser's largest cost. The
 * semantics are those of levels._heuristic_py on ASCII text: the most severe level whose
 * keyword occurs as a whole word (a maximal run of [A-Za-z0-9_], as regex \b sees it),
 * in any case, within the first 4096 characters. Non-ASCII text goes to the Python
 * version (Unicode word boundaries and case rules), given once with set_fallback().
 * tests/test_speedups.py checks both agree.
 *
 * Also stampish(): the generic header reader's pre-check (parsers/formats/generic.py
 * _stampish_py, the regex [0-9](?:[:.][0-9]|[0-9]{5}) searched in text[:end]), which runs on
 * every line no specific format claims; in C it costs that line next to nothing. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

#define MAX_CHARS 4096
#define LEVELS 7

static const char *LEVEL_NAMES[LEVELS] = {"emergency", "critical", "error", "warning", "notice", "info", "debug"};
static PyObject *level_str[LEVELS];
static PyObject *fallback;

/* keyword -> index into LEVEL_NAMES (lower is more severe) */
static const struct { const char *word; int len; int level; } KEYWORDS[] = {
    {"emerg", 5, 0}, {"emergency", 9, 0}, {"panic", 5, 0},
    {"fatal", 5, 1}, {"crit", 4, 1}, {"critical", 8, 1},
    {"err", 3, 2}, {"error", 5, 2}, {"exception", 9, 2},
    {"warn", 4, 3}, {"warning", 7, 3},
    {"notice", 6, 4},
    {"info", 4, 5},
    {"debug", 5, 6}, {"trace", 5, 6},
};
#define N_KEYWORDS (sizeof(KEYWORDS) / sizeof(KEYWORDS[0]))
#define MIN_WORD 3
#define MAX_WORD 9

static unsigned char is_word[256];

/* The level of one word (lower-cased already), or LEVELS if it is no keyword. */
static int word_level(const char *w, Py_ssize_t n) {
    for (size_t i = 0; i < N_KEYWORDS; i++)
        if (KEYWORDS[i].len == n && memcmp(KEYWORDS[i].word, w, (size_t)n) == 0)
            return KEYWORDS[i].level;
    return LEVELS;
}

static int ascii_level(const unsigned char *s, Py_ssize_t n) {
    int best = LEVELS;
    char word[MAX_WORD];
    Py_ssize_t i = 0;
    if (n > MAX_CHARS)
        n = MAX_CHARS;
    while (i < n) {
        while (i < n && !is_word[s[i]])
            i++;
        Py_ssize_t start = i;
        while (i < n && is_word[s[i]])
            i++;
        Py_ssize_t len = i - start;
        if (len < MIN_WORD || len > MAX_WORD)
            continue;
        for (Py_ssize_t k = 0; k < len; k++)
            word[k] = (char)(s[start + k] | 0x20); /* ASCII letters to lower case; digits and _ never match */
        int lvl = word_level(word, len);
        if (lvl < best) {
            best = lvl;
            if (best == 0)
                break;
        }
    }
    return best;
}

static PyObject *heuristic(PyObject *self, PyObject *text) {
    if (!PyUnicode_Check(text)) {
        PyErr_Format(PyExc_TypeError, "heuristic() takes str, not %.100s", Py_TYPE(text)->tp_name);
        return NULL;
    }
    if (!PyUnicode_IS_ASCII(text)) {
        if (fallback == NULL) {
            PyErr_SetString(PyExc_RuntimeError, "parsers._keywords: set_fallback() was not called");
            return NULL;
        }
        return PyObject_CallOneArg(fallback, text);
    }
    int lvl = ascii_level(PyUnicode_1BYTE_DATA(text), PyUnicode_GET_LENGTH(text));
    if (lvl == LEVELS)
        Py_RETURN_NONE;
    return Py_NewRef(level_str[lvl]);
}

static PyObject *set_fallback(PyObject *self, PyObject *fn) {
    if (!PyCallable_Check(fn)) {
        PyErr_SetString(PyExc_TypeError, "set_fallback() takes a callable");
        return NULL;
    }
    Py_XSETREF(fallback, Py_NewRef(fn));
    Py_RETURN_NONE;
}

static inline int is_digit(Py_UCS4 c) { return c >= '0' && c <= '9'; }

/* True when text[:end] holds an ASCII digit followed by ':' or '.' and a digit, or six
 * ASCII digits in a row. */
static PyObject *stampish(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2 || !PyUnicode_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "stampish() takes (str, int)");
        return NULL;
    }
    Py_ssize_t end = PyLong_AsSsize_t(args[1]);
    if (end == -1 && PyErr_Occurred())
        return NULL;
    PyObject *text = args[0];
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    if (end < 0)
        end = 0;
    if (end > n)
        end = n;
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    for (Py_ssize_t i = 0; i + 2 < end; i++) {
        if (!is_digit(PyUnicode_READ(kind, data, i)))
            continue;
        Py_UCS4 c = PyUnicode_READ(kind, data, i + 1);
        if ((c == ':' || c == '.') && is_digit(PyUnicode_READ(kind, data, i + 2)))
            Py_RETURN_TRUE;
        if (i + 5 < end) {
            Py_ssize_t k = i + 1;
            while (k <= i + 5 && is_digit(PyUnicode_READ(kind, data, k)))
                k++;
            if (k > i + 5)
                Py_RETURN_TRUE;
        }
    }
    Py_RETURN_FALSE;
}

static PyMethodDef methods[] = {
    {"stampish", (PyCFunction)(void (*)(void))stampish, METH_FASTCALL,
     "stampish(text, end): the generic reader's stamp pre-check (generic._stampish_py), in C."},
    {"heuristic", heuristic, METH_O, "The level keyword heuristic (levels.heuristic), in C for ASCII text."},
    {"set_fallback", set_fallback, METH_O, "The Python heuristic that handles non-ASCII text."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "parsers._keywords", NULL, -1, methods};

PyMODINIT_FUNC PyInit__keywords(void) {
    for (int c = 0; c < 256; c++)
        is_word[c] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    for (int i = 0; i < LEVELS; i++)
        if ((level_str[i] = PyUnicode_InternFromString(LEVEL_NAMES[i])) == NULL)
            return NULL;
    return PyModule_Create(&module);
}
