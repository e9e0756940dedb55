# From mlcommons/inference b66003e10e2db4b8c36a448b0545ec90fcc6e9e9, tools/submission/submission_checker/utils.py (Apache-2.0); extracted by
# scripts/extract_mlperf_checker.py: only the names the system check reads.

def is_number(s):
    try:
        float(s)
        return True
    except ValueError:
        return False


def lower_list(l):
    return [str(e).lower() for e in l]
