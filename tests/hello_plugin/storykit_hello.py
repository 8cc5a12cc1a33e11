"""A storykit policy that warns about the word "hello" in added lines."""

from storykit.diffs import parse_diff
from storykit.hookspecs import hookimpl
from storykit.models import Finding, Outcome


class HelloPolicy:
    name = "hello"

    def default_config(self):
        return {"word": "hello"}

    def validate_config(self, config):
        from storykit.errors import Invalid

        if not isinstance(config.get("word"), str) or not config["word"]:
            raise Invalid("word must be a non-empty string")

    async def check(self, subject, config):
        word = config["word"]
        return [
            Finding(
                rule="hello.word",
                message=f"added line says {word!r}",
                severity=Outcome.WARN,
                policy=self.name,
                file=line.file,
                line=line.line,
            )
            for line in parse_diff(subject.diff).added_lines()
            if word in line.text.lower()
        ]


@hookimpl
def storykit_register_policies(register, settings):
    register(HelloPolicy())
