# From mlcommons/inference b66003e10e2db4b8c36a448b0545ec90fcc6e9e9, tools/submission/submission_checker/loader.py (Apache-2.0); extracted by
# scripts/extract_mlperf_checker.py: only the names the system check reads.

class SubmissionLogs:
    """Container for parsed submission log artifacts and metadata.

    The `SubmissionLogs` class holds references to parsed log files and
    associated metadata for a single submission. It serves as a data
    transfer object passed between loading and validation phases.
    """

    def __init__(self, performance_log=None, accuracy_log=None, accuracy_result=None,
                 accuracy_json=None, system_json=None, measurements_json=None,
                 nameplate_power_yaml=None, loader_data={}) -> None:
        """Initialize the submission logs container.

        Args:
            performance_log: Parsed performance log object.
            accuracy_log: Parsed accuracy log object.
            accuracy_result (list[str]): Accuracy result file lines.
            accuracy_json (str): Accuracy JSON file path.
            system_json (dict): System description JSON contents.
            measurements_json (dict): Measurements JSON contents.
            loader_data (dict): Metadata dictionary with paths and info.
        """
        self.performance_log = performance_log
        self.accuracy_log = accuracy_log
        self.accuracy_result = accuracy_result
        self.accuracy_json = accuracy_json
        self.system_json = system_json
        self.loader_data = loader_data
        self.measurements_json = measurements_json
        self.nameplate_power_yaml = nameplate_power_yaml
