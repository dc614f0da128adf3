using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace SentryVibe.Data.Migrations
{
    /// <inheritdoc />
    public partial class RunnerTokenIdentity : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<string>(
                name: "RunnerId",
                table: "runner_tokens",
                type: "character varying(100)",
                maxLength: 100,
                nullable: true);

            migrationBuilder.CreateIndex(
                name: "IX_runner_tokens_RunnerId",
                table: "runner_tokens",
                column: "RunnerId");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "IX_runner_tokens_RunnerId",
                table: "runner_tokens");

            migrationBuilder.DropColumn(
                name: "RunnerId",
                table: "runner_tokens");
        }
    }
}
