// dstore config: the effective configuration (config/defaults.yml < --config FILE < --set ...)
// as canonical JSON, or one section of it; a bad file or override is the same error (exit 2)
// every stage would give. Workflows run it before any stage.
#include <stdio.h>
#include <stdlib.h>

#include "common/cfg.h"
#include "common/err.h"
#include "tools/dstore/dstore.h"

int dst_config(int argc, char **argv) {
    static const cli_opt opts[] = {{"section", "NAME", 0, "print only this section (e.g. sample)"}, {0}};
    static const cli_spec spec = {"dstore config", "[--config FILE] [--set KEY=VALUE ...] [--section NAME]",
                                  "Prints the effective configuration as canonical JSON (what the stages read).",
                                  opts, CLI_STD_CONFIG, 0, 0};
    cli_args *a = NULL;
    cfg *c = NULL;
    char *text = NULL;
    int rc = 0, status;
    if (dst_parse(&a, &spec, argc, argv, &status)) goto done;
    ERR_GOTO(rc, cli_load_config(a, &c));
    ERR_GOTO(rc, cfg_canonical(c, cli_get(a, "section") ? cli_get(a, "section") : "", &text));
    printf("%s\n", text);
fail:
    status = rc < 0 ? cli_fail(rc) : 0;
done:
    free(text);
    cfg_free(c);
    cli_args_free(a);
    return status;
}
