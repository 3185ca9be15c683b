namespace Qmoe.Tests;

/// <summary>A fact that needs a file of the shared fixtures; skipped, with the reason, when it is absent.</summary>
public sealed class FixtureFactAttribute : FactAttribute
{
    public FixtureFactAttribute(params string[] fixturePath)
    {
        if (Paths.Fixture(fixturePath) == null) Skip = $"{Paths.FixtureMissing}: needs {string.Join('/', fixturePath)}";
    }
}

/// <summary>A theory variant of <see cref="FixtureFactAttribute"/>.</summary>
public sealed class FixtureTheoryAttribute : TheoryAttribute
{
    public FixtureTheoryAttribute(params string[] fixturePath)
    {
        if (Paths.Fixture(fixturePath) == null) Skip = $"{Paths.FixtureMissing}: needs {string.Join('/', fixturePath)}";
    }
}
